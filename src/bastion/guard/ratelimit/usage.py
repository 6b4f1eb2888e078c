"""Current use of every limit: for `bastion limits`, the admin API and the dashboard.

rows = await snapshot(config.limits, counters)            # every counter in the index
rows = await snapshot(config.limits, counters, in_flight)  # plus calls in flight here
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote

from bastion.guard.ratelimit.config import LimitsConfig
from bastion.guard.ratelimit.counters import Counters
from bastion.guard.ratelimit.in_flight import InFlight
from bastion.guard.ratelimit.rules import RateRule, describe, rate_rules, request_rule


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One counter against one limit. `resets_in` is seconds until a call frees up (None: now)."""

    limit: str
    """As configured and described: `per_agent 60/minute`, `concurrent_per_server 4`."""
    agent: str | None
    server: str | None
    tool: str | None
    """The glob of a `per_tool` limit."""
    used: int
    limit_amount: int
    remaining: int
    resets_in: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def index_entry(rule: RateRule, identifiers: tuple[str, ...]) -> str:
    """How a counter is named in the index: JSON `[rule name, identifiers...]`."""
    return json.dumps([rule.name, *identifiers], separators=(",", ":"))


def _whose(rule: RateRule, identifiers: tuple[str, ...]) -> tuple[str | None, str | None]:
    match rule.scope:
        case "agent":
            return unquote(identifiers[-1]), None
        case "agent-server":
            return unquote(identifiers[1]), identifiers[2]
        case _:
            return None, None


async def snapshot(
    config: LimitsConfig, counters: Counters | None, in_flight: InFlight | None = None
) -> list[UsageRow]:
    """Every limit with a counter in use (read, never counted), then calls in flight against the caps.

    Counters of rules no longer configured are left out. Raises when the storage cannot be read.
    """
    rows: list[UsageRow] = []
    rules = {rule.name: rule for rule in rate_rules(config)}
    requests = request_rule(config)
    if requests is not None:
        rules[requests.name] = requests
    entries = await counters.remembered() if counters is not None else set()
    now = time.time()
    for entry in sorted(entries):
        name, *identifiers = json.loads(entry)
        rule = rules.get(name)
        if rule is None or counters is None:
            continue
        agent, server = _whose(rule, tuple(identifiers))
        for item in rule.items:
            stats = await counters.stats(item, *identifiers)
            remaining = max(0, int(stats.remaining))
            used = item.amount - remaining
            resets_in = max(0.0, math.ceil(stats.reset_time - now)) if used else None
            limit = f"{rule.name} {describe(item)}"
            rows.append(UsageRow(limit, agent, server, rule.glob, used, item.amount, remaining, resets_in))
    if in_flight is not None:
        for cap, counter, is_agent in (
            (in_flight.per_agent, in_flight.agents, True),
            (in_flight.per_server, in_flight.servers, False),
        ):
            if cap is None:
                continue
            name = "concurrent_per_agent" if is_agent else "concurrent_per_server"
            for key, used in sorted(counter.items()):
                agent, server = (key, None) if is_agent else (None, key)
                rows.append(UsageRow(f"{name} {cap}", agent, server, None, used, cap, max(0, cap - used), None))
    return rows
