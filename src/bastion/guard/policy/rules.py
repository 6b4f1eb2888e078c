"""Compiled rules: what a rule's `match` says about a tool, and whether its `when` holds for a call.

The static part of a match (agent, role, server, tool name, declared annotations) is decided
without looking at arguments; `tools/list` filtering and the unreachable-rule lint use it alone.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.guard.policy.conditions import Condition
from bastion.guard.policy.config import MatchConfig, RuleConfig
from bastion.guard.policy.server_context import ServerContext

if TYPE_CHECKING:
    from bastion.guard.policy.cel import CelExpression

ANNOTATION_DEFAULTS: Mapping[str, bool] = {
    "readOnlyHint": False,
    "destructiveHint": True,
    "idempotentHint": False,
    "openWorldHint": True,
}
"""The MCP spec's values for hints a tool declares without setting them."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who calls which tool where, with the tool's annotations as its server declared them.

    `annotations` is None when the server does not list the tool: annotation matches then fail.
    """

    agent: str
    roles: frozenset[str]
    server: str
    tool: str
    annotations: Mapping[str, Any] | None = None


def _any_glob(patterns: tuple[str, ...] | None, value: str) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _globs_regex(patterns: tuple[str, ...] | None) -> re.Pattern[str] | None:
    """One compiled regex for a list of globs (None: matches anything)."""
    if patterns is None:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in patterns))


def annotation_key(annotations: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """The part of a tool's annotations rules can match on, as a hashable value."""
    if annotations is None:
        return None
    if not annotations:
        return _DEFAULT_ANNOTATION_KEY
    values = [annotations.get(hint, default) for hint, default in ANNOTATION_DEFAULTS.items()]
    # A non-boolean hint (a server's mistake) matches neither true nor false; keep the key hashable.
    return tuple([value if isinstance(value, bool) else None for value in values])


_DEFAULT_ANNOTATION_KEY = tuple(ANNOTATION_DEFAULTS.values())
"""The key of a tool that declares no hints (the common case, answered without a loop)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, compiled. `id` names it in verdicts: its `name`, else `rules[N]` (with the file for includes)."""

    id: str
    index: int
    match: MatchConfig
    conditions: tuple[Condition, ...]
    action: str
    log: bool
    reason: str | None
    skip_catalogue: tuple[str, ...]
    file: Path
    line: int | None
    loc: tuple[str | int, ...]
    regexes: tuple[re.Pattern[str] | None, ...] = ()
    """Compiled agent, role, server and tool globs."""
    cel: CelExpression | None = None
    sink: bool | None = None
    """The rule marks the tools it matches as sinks (`true`) or never sinks (`false`); see `SinkRules`."""

    @classmethod
    def compile(
        cls, config: RuleConfig, index: int, *, file: Path, line: int | None, loc: tuple[str | int, ...], prefix: str
    ) -> Rule:
        conditions = tuple(Condition.compile(path, cond) for path, cond in (config.when or {}).items())
        return cls(
            id=config.name or f"{prefix}rules[{index}]",
            index=index,
            match=config.match,
            conditions=conditions,
            action=config.action.value if config.action is not None else "",
            log=config.log,
            reason=config.reason,
            skip_catalogue=config.skip_catalogue,
            file=file,
            line=line,
            loc=loc,
            regexes=tuple(
                _globs_regex(p) for p in (config.match.agent, config.match.role, config.match.server, config.match.tool)
            ),
            cel=_cel(config),
            sink=config.sink,
        )

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.line}" if self.line is not None else self.file.name

    def matches_statically(self, subject: Subject) -> bool:
        """Whether `match` holds for `subject` (the fast form of `static_mismatch(...) is None`)."""
        agent, role, server, tool = self.regexes
        if agent is not None and agent.fullmatch(subject.agent) is None:
            return False
        if role is not None and not any(role.fullmatch(r) for r in subject.roles):
            return False
        if server is not None and server.fullmatch(subject.server) is None:
            return False
        if tool is not None and tool.fullmatch(subject.tool) is None:
            return False
        return not self.match.annotations or self.static_mismatch(subject) is None

    def static_mismatch(self, subject: Subject) -> str | None:
        """Why the rule's `match` does not apply to `subject`, or None when it does."""
        match = self.match
        if not _any_glob(match.agent, subject.agent):
            return f"agent {subject.agent!r} is not {_list(match.agent)}"
        if match.role is not None and not any(
            fnmatch.fnmatchcase(role, pattern) for role in subject.roles for pattern in match.role
        ):
            return f"agent {subject.agent!r} has none of the roles {_list(match.role)}"
        if not _any_glob(match.server, subject.server):
            return f"server {subject.server!r} is not {_list(match.server)}"
        if not _any_glob(match.tool, subject.tool):
            return f"tool {subject.tool!r} is not {_list(match.tool)}"
        for hint, wanted in (match.annotations or {}).items():
            if subject.annotations is None:
                return f"the server does not list tool {subject.tool!r}, so its {hint} is unknown"
            declared = subject.annotations.get(hint, ANNOTATION_DEFAULTS[hint])
            if declared is not wanted:
                return f"the tool's declared {hint} is {_yaml_bool(declared)}, not {_yaml_bool(wanted)}"
        return None

    def failing_condition(
        self, subject: Subject, arguments: Mapping[str, Any], context: ServerContext
    ) -> Condition | CelExpression | None:
        """The first `when` condition (or the `cel` expression) that does not hold, or None when all do."""
        for condition in self.conditions:
            if not condition.holds(arguments, context):
                return condition
        if self.cel is not None and not self.cel_holds(subject, arguments, context)[0]:
            return self.cel
        return None

    def cel_holds(
        self, subject: Subject, arguments: Mapping[str, Any], context: ServerContext
    ) -> tuple[bool, str | None]:
        """Whether the rule's `cel` expression holds (True without one), and its evaluation error."""
        if self.cel is None:
            return True, None
        return self.cel.evaluate(
            agent=subject.agent,
            roles=subject.roles,
            server=subject.server,
            tool=subject.tool,
            annotations=subject.annotations,
            arguments=arguments,
            context=context,
        )

    @property
    def conditional(self) -> bool:
        """Whether arguments decide if the rule matches (it has `when` or `cel`)."""
        return bool(self.conditions) or self.cel is not None

    def describe_match(self) -> str:
        parts = [
            f"{key} {_list(value)}"
            for key, value in (
                ("agent", self.match.agent),
                ("role", self.match.role),
                ("server", self.match.server),
                ("tool", self.match.tool),
            )
            if value is not None
        ]
        parts += [f"{hint}={_yaml_bool(v)}" for hint, v in (self.match.annotations or {}).items()]
        parts += [f"when {c.describe()}" for c in self.conditions]
        if self.cel is not None:
            parts.append(f"cel {self.cel.text!r}")
        return ", ".join(parts) or "every call"


def _cel(config: RuleConfig) -> CelExpression | None:
    if config.cel is None:
        return None
    from bastion.guard.policy.cel import CelExpression

    # An evaluation error must not open a door: it counts as a match for deny and ask rules.
    return CelExpression.compile(config.cel, on_error=config.action is not None and config.action.value != "allow")


def _list(patterns: tuple[str, ...] | None) -> str:
    if not patterns:
        return "anything"
    return " or ".join(repr(p) for p in patterns)


def _yaml_bool(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)
