"""The `policy:` section of bastion.yaml: profile, rules, included rule files, per-server context.

Reference: docs/policy.md and docs/configuration.md. Only shapes and local checks live here
(bad globs, bad regexes, unknown keys); checks that need the whole policy (unreachable rules,
included files, catalogue ids) are in `bastion.guard.policy.lint`.
"""

from __future__ import annotations

import enum
import math
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bastion.config_errors import Loc, config_problem
from bastion.guard.policy.paths import parse_argument_path

SQL_OPERATIONS: tuple[str, ...] = (
    "select",
    "insert",
    "update",
    "delete",
    "merge",
    "drop",
    "truncate",
    "alter",
    "create",
    "grant",
    "revoke",
    "copy",
    "attach",
    "pragma",
    "set",
    "command",
)
"""What an `sql:` condition may name: the statement kinds `sql_operations` reports."""

RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
ANNOTATION_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


class Profile(enum.StrEnum):
    """How much the policy does when no rule speaks: see docs/policy.md#profiles."""

    RECOMMENDED = "recommended"
    STRICT = "strict"
    AUDIT_ONLY = "audit-only"


class Action(enum.StrEnum):
    """What a rule does with the calls it matches."""

    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"


class CatalogueSetting(enum.StrEnum):
    """What a catalogue entry does when found: its own default, or an override."""

    DENY = "deny"
    ASK = "ask"
    LOG = "log"
    OFF = "off"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def check_glob(pattern: str) -> str:
    """A glob as rules use it (`*`, `?`, `[abc]`); unbalanced brackets and empty patterns are errors."""
    if not pattern.strip():
        raise config_problem("is an empty pattern", 'write a name or a glob such as "delete_*"')
    depth = 0
    for index, char in enumerate(pattern):
        if char == "[":
            if depth:
                raise config_problem(
                    f"`{pattern}` is not a valid glob: `[` inside `[...]` at position {index}",
                    "close the first `[...]` set before opening another",
                )
            depth = 1
            if pattern[index + 1 : index + 2] == "]":
                raise config_problem(f"`{pattern}` is not a valid glob: empty `[]`", "put characters inside `[...]`")
        elif char == "]" and depth:
            depth = 0
    if depth:
        raise config_problem(
            f"`{pattern}` is not a valid glob: `[` is never closed",
            "close it with `]`, or write `[[]` for a literal `[`",
        )
    return pattern


Glob = str
Globs = Annotated[tuple[Glob, ...], BeforeValidator(_one_or_many), Field(min_length=1)]


class MatchConfig(_Strict):
    """Which calls a rule is about. Every key given must hold; a key left out matches anything."""

    agent: Globs | None = None
    role: Globs | None = None
    server: Globs | None = None
    tool: Globs | None = None
    annotations: dict[str, bool] | None = None

    @field_validator("agent", "role", "server", "tool")
    @classmethod
    def _globs(cls, patterns: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for pattern in patterns or ():
            check_glob(pattern)
        return patterns

    @field_validator("annotations")
    @classmethod
    def _hints(cls, hints: dict[str, bool] | None) -> dict[str, bool] | None:
        for name in hints or {}:
            if name not in ANNOTATION_HINTS:
                raise config_problem(
                    f"`{name}` is not a tool annotation Bastion matches on", "use " + ", ".join(ANNOTATION_HINTS)
                )
        return hints


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise config_problem("must be a number", "write a number such as 1000 or 2.5")
    return value


Number = Annotated[float, BeforeValidator(_number)]


class ConditionConfig(_Strict):
    """Tests on the values an argument path selects. All tests given must hold for one value."""

    equals: str | int | float | bool | None = None
    in_: tuple[str | int | float | bool, ...] | None = Field(default=None, alias="in")
    glob: str | None = None
    regex: str | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None
    sql: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] | None = None
    outside_roots: bool | None = None
    off_allowlist: bool | None = None
    secret: bool | None = None
    exists: bool | None = None

    @field_validator("glob")
    @classmethod
    def _glob(cls, pattern: str | None) -> str | None:
        return None if pattern is None else check_glob(pattern)

    @field_validator("regex")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        from bastion.guard.policy.regex import compile_regex

        try:
            compile_regex(pattern)
        except ValueError as exc:
            raise config_problem(
                f"`{pattern}` is not a valid regular expression: {exc}",
                "fix the expression (RE2 syntax: no backreferences or lookaround); "
                "escape literal characters such as `(` or `.` with `\\`",
            ) from None
        return pattern

    @field_validator("sql")
    @classmethod
    def _sql(cls, operations: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if operations is None:
            return None
        lowered = tuple(op.lower() for op in operations)
        for op in lowered:
            if op not in SQL_OPERATIONS:
                raise config_problem(f"`{op}` is not an SQL operation", "use some of: " + ", ".join(SQL_OPERATIONS))
        if not lowered:
            raise config_problem("is empty", "name at least one operation, e.g. [drop, truncate]")
        return lowered

    @model_validator(mode="after")
    def _not_empty(self) -> ConditionConfig:
        if not self.model_fields_set:
            raise config_problem("has no test", "add one, e.g. {equals: main} or {sql: [drop]}")
        return self


def _check_condition_paths(when: Any) -> Any:
    if isinstance(when, dict):
        for path in when:
            if isinstance(path, str):
                try:
                    parse_argument_path(path)
                except ValueError as exc:
                    raise config_problem(
                        f"`{path}` is not an argument path: {exc}",
                        "write e.g. arguments.sql, arguments.items[*].path or arguments.**.url",
                    ) from None
    return when


class RuleConfig(_Strict):
    """One policy rule: `match` says which calls, `when` adds argument conditions, `action` decides."""

    name: str | None = None
    match: MatchConfig = Field(default_factory=MatchConfig)
    when: Annotated[dict[str, ConditionConfig], BeforeValidator(_check_condition_paths)] | None = None
    action: Action | None = None
    """Required, but on a rule that only marks sinks (`sink` set, no action)."""
    log: bool = False
    reason: str | None = None
    skip_catalogue: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    cel: str | None = None
    sink: bool | None = None
    """`true`: a call to the tools `match` names is side-effecting, so provenance holds it when it carries
    a value an untrusted or flagged result brought in; `false`: never (see docs/injection.md)."""

    @model_validator(mode="after")
    def _action_or_sink(self) -> RuleConfig:
        if self.action is None and self.sink is None:
            raise config_problem(
                "has no `action`",
                "add `action: allow`, `deny` or `ask`, or `sink: true` to only mark the tools it matches as sinks",
            )
        if self.sink is not None and (self.when or self.cel is not None):
            raise config_problem(
                "sets `sink` and a `when`/`cel` condition; a tool is a sink or not whatever its arguments",
                "put `sink:` on a rule with only `match` (a separate rule if this one needs its condition)",
            )
        if self.action is None and (self.log or self.reason is not None or self.skip_catalogue):
            raise config_problem(
                "sets `log`, `reason` or `skip_catalogue` but no `action`", "add `action: allow`, `deny` or `ask`"
            )
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and not RULE_NAME.fullmatch(name):
            raise config_problem(
                f"`{name}` is not a valid rule name", "use 1-128 letters, digits, `.`, `:`, `-` or `_`"
            )
        return name

    @field_validator("cel")
    @classmethod
    def _cel(cls, text: str | None) -> str | None:
        if text is None:
            return None
        from bastion.guard.policy.cel import CelSyntaxError, compile_program  # celpy loads only when used

        try:
            compile_program(text)
        except CelSyntaxError as exc:
            raise config_problem(
                f"is not a valid CEL expression: {exc}",
                "fix the expression, e.g. cel: 'arguments.amount > 100 && \"finance\" in roles'",
            ) from None
        return text

    @field_validator("skip_catalogue")
    @classmethod
    def _skip_globs(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            check_glob(pattern)
        return patterns


class ServerPolicyConfig(_Strict):
    """What one server may touch, as the catalogue and the `outside_roots` / `off_allowlist` tests see it."""

    roots: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    @field_validator("roots")
    @classmethod
    def _absolute(cls, roots: tuple[str, ...]) -> tuple[str, ...]:
        for root in roots:
            if not (root.startswith("/") or root.startswith("~")):
                raise config_problem(f"`{root}` is not an absolute path", "write the full path, e.g. /srv/data")
        return roots

    @field_validator("domains")
    @classmethod
    def _domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        for domain in domains:
            if not domain.strip() or "/" in domain or " " in domain:
                raise config_problem(
                    f"`{domain}` is not a domain name", "write a host name such as api.github.com or *.example.com"
                )
        return domains


def _yaml_off(settings: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false; in this mapping it can only mean the setting `off`.
    if isinstance(settings, dict):
        return {key: "off" if value is False else value for key, value in settings.items()}
    return settings


class PolicyConfig(_Strict):
    """The whole `policy:` section."""

    profile: Profile = Profile.RECOMMENDED
    rules: tuple[RuleConfig, ...] = ()
    include: tuple[Path, ...] = ()
    catalogue: Annotated[dict[str, CatalogueSetting], BeforeValidator(_yaml_off)] = Field(default_factory=dict)
    servers: dict[str, ServerPolicyConfig] = Field(default_factory=dict)

    @field_validator("catalogue")
    @classmethod
    def _catalogue_keys(cls, settings: dict[str, CatalogueSetting]) -> dict[str, CatalogueSetting]:
        for key in settings:
            check_glob(key)
        return settings


class IncludedRules(_Strict):
    """A file named in `policy.include`: a list of rules, nothing else."""

    rules: tuple[RuleConfig, ...] = ()


POLICY_MODELS_AT: dict[Loc, type[BaseModel]] = {
    ("policy",): PolicyConfig,
    ("policy", "rules", "*"): RuleConfig,
    ("policy", "rules", "*", "match"): MatchConfig,
    ("policy", "rules", "*", "when", "*"): ConditionConfig,
    ("policy", "servers", "*"): ServerPolicyConfig,
}
"""Where each policy model is validated in bastion.yaml, for "allowed keys here" hints in errors."""

INCLUDE_MODELS_AT: dict[Loc, type[BaseModel]] = {
    (): IncludedRules,
    ("rules", "*"): RuleConfig,
    ("rules", "*", "match"): MatchConfig,
    ("rules", "*", "when", "*"): ConditionConfig,
}
"""The same for a file named in `policy.include`."""
