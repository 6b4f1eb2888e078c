"""The `results:` section of bastion.yaml: what Bastion does with what tools return.

Documented in docs/configuration.md and docs/injection.md. Settings resolve per call:
the top-level values, then `results.servers.<server>`, then every `results.tools.<glob>`
matching the tool (`tool` or `server/tool`), in the order written; the last one set wins.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bastion.config_errors import check_tool_globs, config_problem
from bastion.guard.results.taint import Scope
from bastion.runtime.config import parse_size

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "OversizeAction",
    "ProvenanceConfig",
    "ResultAction",
    "ResultRule",
    "ResultsConfig",
    "Settings",
]

ResultAction: TypeAlias = Literal["log", "sanitize", "ask", "deny"]
OversizeAction: TypeAlias = Literal["log", "ask", "deny"]
SinkAction: TypeAlias = Literal["ask", "deny"]
RequestMatch: TypeAlias = Literal["objects", "action", "off"]

DEFAULT_MAX_RECORDS = 1000
"""Records (rows of a table, items of a JSON array) a result may carry before it is flagged."""
DEFAULT_MAX_BYTES = 1024 * 1024
"""Bytes (compact JSON) a result may carry before it is flagged."""


def _count(value: Any) -> Any:
    if isinstance(value, bool):
        raise config_problem("must be a whole number, not true/false", "write a number such as 1000")
    return value


Count = Annotated[int, BeforeValidator(_count), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResultRule(_Frozen):
    """Overrides for one server or tool glob; a key left out keeps the value from above."""

    on_injection: ResultAction | None = None
    on_oversize: OversizeAction | None = None
    max_records: Count | None = None
    max_bytes: Bytes | None = None
    trusted_values: tuple[str, ...] | None = None
    sink: bool | None = None
    """`true`: a call to this tool is side-effecting (checked for remembered values); `false`: never."""


class ProvenanceConfig(_Frozen):
    """Remembering values that flagged or untrusted results carried, and holding calls that send them."""

    enabled: bool = True
    on_match: SinkAction = "ask"
    window: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 86400.0
    """Seconds a remembered value stays remembered."""
    max_values: Count = 10000
    """Values remembered per agent at most (the oldest are forgotten first)."""
    max_session_values: Count = 1000
    """Values remembered per agent session at most (the oldest are forgotten first)."""
    scope: Scope = "both"
    """Which memory a call is checked against: `both` (its session's and its agent's), `session`
    (its session's only; the agent's for a call without a session) or `agent`."""
    requests: RequestMatch = "objects"
    """What injected text asked for (actions, objects) is remembered too: `objects` holds a call doing a requested
    action with an object the injection named; `action` also one doing a requested action the agent had not done
    before the injection; `off` remembers nothing (guard/results/requested.py)."""


class ResultsConfig(_Frozen):
    """Result checks: injection scanning, record/byte thresholds, provenance."""

    enabled: bool = True
    on_injection: ResultAction = "log"
    on_oversize: OversizeAction = "log"
    max_records: Count = DEFAULT_MAX_RECORDS
    max_bytes: Bytes = DEFAULT_MAX_BYTES
    trusted_values: tuple[str, ...] = ()
    servers: Mapping[str, ResultRule] = Field(default_factory=dict)
    tools: Mapping[str, ResultRule] = Field(default_factory=dict)
    """Glob (`tool`, or `server/tool`) -> overrides."""
    provenance: ProvenanceConfig = Field(default_factory=ProvenanceConfig)

    @field_validator("tools", mode="before")
    @classmethod
    def _globs(cls, value: Any) -> Any:
        return check_tool_globs(value, "send_*", "mail/*", "results", "tools")

    def settings(self, server: str, tool: str | None, *, untrusted: bool = False) -> Settings:
        """The settings in force for `server`'s `tool` (None: a non-tool result such as a resource)."""
        layers = [self.servers[server]] if server in self.servers else []
        if tool is not None:
            layers += [rule for glob, rule in self.tools.items() if _matches(glob, server, tool)]
        values: dict[str, Any] = {
            "on_injection": self.on_injection,
            "on_oversize": self.on_oversize,
            "max_records": self.max_records,
            "max_bytes": self.max_bytes,
            "trusted_values": self.trusted_values,
            "sink": None,
        }
        for layer in layers:
            for key in values:
                set_value = getattr(layer, key)
                if set_value is None:
                    continue
                values[key] = values[key] + set_value if key == "trusted_values" else set_value
        return Settings(untrusted=untrusted, **values)


@dataclass(frozen=True, slots=True)
class Settings:
    """What applies to one result (resolved from `ResultsConfig.settings`)."""

    on_injection: ResultAction
    on_oversize: OversizeAction
    max_records: int
    max_bytes: int
    trusted_values: tuple[str, ...]
    sink: bool | None
    untrusted: bool


def _matches(glob: str, server: str, tool: str) -> bool:
    if "/" in glob:
        server_glob, tool_glob = glob.split("/", 1)
        return fnmatch.fnmatchcase(server, server_glob) and fnmatch.fnmatchcase(tool, tool_glob)
    return fnmatch.fnmatchcase(tool, glob)


MAX_SETTINGS_KEPT = 4096
"""(server, tool) pairs whose resolved settings a `SettingsMemo` keeps (tool names come from agents)."""


class SettingsMemo:
    """`config.settings(server, tool, untrusted=...)`, resolved once per (server, tool) while the
    config is the same object (a `ResultsConfig` is frozen, so what it resolves to holds)."""

    __slots__ = ("_config", "_made")

    def __init__(self) -> None:
        self._config: ResultsConfig | None = None
        self._made: dict[tuple[str, str | None, bool], Settings] = {}

    def __call__(self, config: ResultsConfig, server: str, tool: str | None, *, untrusted: bool = False) -> Settings:
        if config is not self._config:
            self._config, self._made = config, {}
        key = (server, tool, untrusted)
        made = self._made.get(key)
        if made is None:
            if len(self._made) >= MAX_SETTINGS_KEPT:
                self._made.clear()
            made = self._made[key] = config.settings(server, tool, untrusted=untrusted)
        return made
