"""The `limits:` section of bastion.yaml: rate limits, concurrency caps and size caps.

Rates are written in plain words, `60/minute`, `1000/day`, `5 per second`, or several
at once, `10/second; 1000/day`. Documented in docs/configuration.md and docs/limits.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bastion.config_errors import check_tool_globs, config_problem
from bastion.lazy_import import lazy_module
from bastion.runtime.config import parse_size

if TYPE_CHECKING:
    import limits
else:  # the rate parser is loaded by the first rate in a config, not by every gateway
    limits = lazy_module("limits")

__all__ = ["LimitsConfig", "ToolLimitConfig", "parse_rate"]

_RATE_FIX = "write e.g. 60/minute, 1000/day or `10/second; 1000/day` (units: second, minute, hour, day, month, year)"
STORAGE_SCHEMES = ("memory://", "redis://", "rediss://", "redis+unix://", "async+redis://", "async+rediss://")


def parse_rate(text: str) -> tuple[limits.RateLimitItem, ...]:
    """`60/minute` or `10/second; 1000/day` -> the library's rate items. ValueError when unreadable."""
    if not text.strip():
        raise ValueError("empty rate")
    items = tuple(limits.parse_many(text))
    if not items or any(item.amount <= 0 for item in items):
        raise ValueError(f"not a rate: {text!r}")
    return items


def _rate(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str):
        raise config_problem(f"`{value}` is not a rate", _RATE_FIX)
    try:
        parse_rate(value)
    except ValueError:
        raise config_problem(f"`{value}` is not a rate", _RATE_FIX) from None
    return value.strip()


def _count(value: Any) -> Any:
    if isinstance(value, bool):
        raise config_problem("must be a whole number, not true/false", "write a number such as 8")
    return value


Rate = Annotated[str, BeforeValidator(_rate)]
"""A rate as written (checked): `60/minute`, `10/second; 1000/day`."""
Count = Annotated[int, BeforeValidator(_count), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolLimitConfig(_Frozen):
    """A rate for the tools a glob matches. `per: agent` counts each agent apart; `per: all`, every agent together."""

    rate: Rate
    per: Literal["agent", "all"] = "agent"


def _tool_limit(value: Any) -> Any:
    return {"rate": value} if isinstance(value, str) else value


def _storage(url: str) -> str:
    url = url.strip()
    if url == "memory":
        return "memory://"
    if not url.startswith(STORAGE_SCHEMES):
        raise config_problem(
            f"`{url}` is not a storage Bastion can keep counters in",
            "write `memory` (this process only) or a Redis URL such as redis://127.0.0.1:6379/0",
        )
    return url


class LimitsConfig(_Frozen):
    """Every limit a call is checked against. Nothing set: no limits (the default)."""

    per_agent: Rate | None = None
    """Each agent, over every server."""
    per_agent_server: Rate | None = None
    """Each agent on each server."""
    per_tool: Mapping[str, Annotated[ToolLimitConfig, BeforeValidator(_tool_limit)]] = Field(default_factory=dict)
    """Glob (`tool`, or `server/tool`) -> rate."""
    global_: Rate | None = Field(default=None, alias="global")
    """Every call through this gateway (all replicas sharing the storage), together."""
    agents: Mapping[str, Rate] = Field(default_factory=dict)
    """Agent name -> a rate replacing `per_agent` for that agent."""
    requests_per_agent: Rate | None = None
    """Every HTTP request each agent sends (any MCP method), refused with 429 and Retry-After."""
    concurrent_per_agent: Count | None = None
    concurrent_per_server: Count | None = None
    max_request_bytes: Bytes | None = None
    max_response_bytes: Bytes | None = None
    storage: Annotated[str, AfterValidator(_storage)] = Field(default="memory://", repr=False)
    on_storage_failure: Literal["deny", "local"] = "deny"
    strategy: Literal["moving-window", "sliding-window", "fixed-window"] = "moving-window"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("per_tool", mode="before")
    @classmethod
    def _globs(cls, value: Any) -> Any:
        return check_tool_globs(value, "delete_*", "git/*", "limits", "per_tool")

    @property
    def rate_limited(self) -> bool:
        """Any rate is configured (so a storage is needed)."""
        rates = (self.per_agent, self.per_agent_server, self.per_tool, self.global_, self.agents)
        return any(rates) or self.requests_per_agent is not None

    @property
    def any(self) -> bool:
        """Any limit at all is configured."""
        caps = (self.concurrent_per_agent, self.concurrent_per_server, self.max_request_bytes, self.max_response_bytes)
        return self.rate_limited or any(cap is not None for cap in caps)

    @property
    def shared(self) -> bool:
        """Counters live in Redis, shared by every replica using the same URL."""
        return not self.storage.startswith("memory")
