"""The configured rate limits as a flat list, and which of them a call counts against.

Each `RateRule` is one line of the `limits:` section (`per_agent`, one `per_tool` glob, ...).
A call counts against every rule that applies to it, narrowest first: per tool, per agent
and server, per agent, global.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from bastion.guard.ratelimit.config import LimitsConfig, parse_rate
from bastion.model import ToolCall

if TYPE_CHECKING:
    import limits

Scope = Literal["agent", "agent-server", "all"]


def escape_part(text: str) -> str:
    """A storage key part: identifiers are joined with `/`, so `a/b`+`c` must never meet `a`+`b/c`."""
    return quote(text, safe="") if "/" in text or "%" in text else text


@dataclass(frozen=True, slots=True)
class RateRule:
    """One configured rate. `name` is how messages, audit events and `bastion limits` call it."""

    name: str
    rate: str
    """As written in bastion.yaml, e.g. `60/minute`."""
    items: tuple[limits.RateLimitItem, ...]
    scope: Scope
    glob: str | None = None
    """For `per_tool` rules: the glob on `tool` or `server/tool`."""
    agent: str | None = None
    """For an `agents:` override: the one agent it applies to."""
    excluded_agents: frozenset[str] = frozenset()
    """For `per_agent`: agents that have their own rate under `agents:`."""

    def applies(self, call: ToolCall) -> bool:
        agent = call.principal.agent
        if self.agent is not None and agent != self.agent:
            return False
        if agent in self.excluded_agents:
            return False
        if self.glob is None:
            return True
        target = f"{call.server}/{call.tool}" if "/" in self.glob else call.tool
        return fnmatchcase(target, self.glob)

    def identifiers(self, call: ToolCall) -> tuple[str, ...]:
        """The storage key parts of the counter this call counts against."""
        agent = escape_part(call.principal.agent)
        match self.scope:
            case "agent":
                head = ("tool", escape_part(self.glob)) if self.glob is not None else ("agent",)
                return (*head, agent)
            case "agent-server":
                return ("agent-server", agent, call.server)
            case "all":
                return ("tool", escape_part(self.glob)) if self.glob is not None else ("global",)

    def subject(self, call: ToolCall) -> str:
        """Whose counter it is, in words: `agent 'bot' on server 'git'`."""
        match self.scope:
            case "agent":
                return f"agent {call.principal.agent!r}"
            case "agent-server":
                return f"agent {call.principal.agent!r} on server {call.server!r}"
            case "all":
                return "all agents"


def rate_rules(config: LimitsConfig) -> tuple[RateRule, ...]:
    """Every configured rate, narrowest first (the order a call is counted in)."""
    rules: list[RateRule] = []
    for glob, tool in config.per_tool.items():
        scope: Scope = "agent" if tool.per == "agent" else "all"
        rules.append(RateRule(f"per_tool {glob}", tool.rate, parse_rate(tool.rate), scope, glob=glob))
    if config.per_agent_server is not None:
        rate = config.per_agent_server
        rules.append(RateRule("per_agent_server", rate, parse_rate(rate), "agent-server"))
    for agent, rate in config.agents.items():
        rules.append(RateRule(f"agents.{agent}", rate, parse_rate(rate), "agent", agent=agent))
    if config.per_agent is not None:
        rate = config.per_agent
        excluded = frozenset(config.agents)
        rules.append(RateRule("per_agent", rate, parse_rate(rate), "agent", excluded_agents=excluded))
    if config.global_ is not None:
        rules.append(RateRule("global", config.global_, parse_rate(config.global_), "all"))
    return tuple(rules)


def request_rule(config: LimitsConfig) -> RateRule | None:
    """`requests_per_agent`, counted at the HTTP front door (not a tool-call rule)."""
    rate = config.requests_per_agent
    if rate is None:
        return None
    return RateRule("requests_per_agent", rate, parse_rate(rate), "agent")


def describe(item: limits.RateLimitItem) -> str:
    """`60/minute`, `10/5 minutes`: one rate item in the plain words of bastion.yaml."""
    unit = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount}/{unit}"
    return f"{item.amount}/{item.multiples} {unit}s"
