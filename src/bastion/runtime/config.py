"""The per-server `sandbox`, `health` and `restart` sections of bastion.yaml.

Referenced from `bastion.config.StdioServerConfig`; documented in docs/configuration.md
and docs/sandbox.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bastion.config_errors import config_problem

__all__ = ["HealthConfig", "RestartConfig", "SandboxConfig", "StdioLaunch", "parse_size", "sandbox_setting"]

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_DOMAIN = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*|\[?[0-9a-f:.]+\]?")


def parse_size(value: Any) -> int:
    """`512M`, `1G`, `1.5GiB`, `65536`: a size in bytes (K, M, G, T are powers of 1024)."""
    if isinstance(value, bool):
        raise config_problem("must be a size, not true/false", "write e.g. 512M or 1G")
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(str(value))
    if match is None:
        raise config_problem(f"`{value}` is not a size", "write a number of bytes or e.g. 512M, 1G")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise config_problem("must be a number, not true/false", "write a number")
    return value


Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(gt=0)]
Positive = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SandboxConfig(_Frozen):
    """How one stdio server is confined. The defaults are the sandbox every server gets."""

    enabled: bool = True
    network: Literal["none", "allowlist"] = "none"
    allow_domains: tuple[str, ...] = ()
    writable: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()
    memory: Bytes | None = 512 << 20
    cpu: Positive | None = 1.0
    pids: Count | None = 128
    nofile: Count | None = 1024

    @field_validator("allow_domains")
    @classmethod
    def _domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(d.strip().lower().rstrip(".") for d in domains)
        for domain in cleaned:
            if not _DOMAIN.fullmatch(domain) or domain.startswith("*.*"):
                raise config_problem(
                    f"`{domain}` is not a domain name", "write names like api.example.com or *.example.com"
                )
        return cleaned

    @field_validator("writable", "read_only")
    @classmethod
    def _absolute(cls, paths: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        source = info.context.get("source") if isinstance(info.context, dict) else None
        base = Path(source).parent if source else Path.cwd()
        return tuple((base / path.expanduser()).resolve() for path in paths)

    @model_validator(mode="after")
    def _domains_need_allowlist(self) -> SandboxConfig:
        if self.allow_domains and self.network != "allowlist":
            raise config_problem(
                "lists `allow_domains` but `network` is `none`", "add `network: allowlist` to let them through"
            )
        return self


def sandbox_setting(value: Any) -> Any:
    """`sandbox: off` (YAML reads it as false) is short for `sandbox: {enabled: false}`."""
    if value is False or value == "off":
        return {"enabled": False}
    if value is None or value is True or value == "on":
        return {}
    return value


class HealthConfig(_Frozen):
    """The supervisor's protocol-level health check (a `ping`)."""

    interval: Positive = 30.0
    timeout: Positive = 10.0


class RestartConfig(_Frozen):
    """How the supervisor restarts a server that exits, hangs or is killed by a limit."""

    backoff: Positive = 1.0
    backoff_max: Positive = 60.0
    max_restarts: Count = 5
    window: Positive = 300.0


class StdioLaunch(Protocol):
    """What the runtime reads of a configured stdio server (`bastion.config.StdioServerConfig`)
    to launch it: its arguments, environment, folder and sandbox. The command comes apart,
    resolved to a path."""

    @property
    def args(self) -> tuple[str, ...]: ...

    @property
    def env(self) -> Mapping[str, str]: ...

    @property
    def cwd(self) -> Path | None: ...

    @property
    def sandbox(self) -> SandboxConfig: ...
