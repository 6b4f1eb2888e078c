"""The `rate-limit` check, first in the guard pipeline: size of the request, calls in flight,
then every configured rate. Also caps the size of results on their way back.

Over a limit, the agent gets a tool error naming the limit and when to retry, the refusal
is audited (`rate.limited`), and `rate_limit_tripped` is raised once per burst.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from bastion.guard.pipeline import tool_error
from bastion.guard.ratelimit.config import LimitsConfig
from bastion.guard.ratelimit.counters import Counters, CountersUnavailable
from bastion.guard.ratelimit.in_flight import InFlight
from bastion.guard.ratelimit.reporting import LimitReporter, Refusal
from bastion.guard.ratelimit.rules import RateRule, describe, escape_part, rate_rules, request_rule
from bastion.guard.ratelimit.usage import UsageRow, index_entry, snapshot
from bastion.model import Decision, Principal, ToolCall, Verdict

CHECK_NAME = "rate-limit"
CONCURRENCY_BURST_GAP = 60.0
"""Concurrency and size refusals closer together than this (seconds) are one burst."""


@dataclass(frozen=True, slots=True)
class RequestRefusal:
    """An HTTP request refused at the front door: its status (429, or 503 when the counters
    cannot be kept), `Retry-After` seconds and the message."""

    status: int
    retry_after: float
    message: str


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON (what goes over the wire, near enough)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


class RateLimitCheck:
    """Enforces the `limits:` section. `counters` may be shared by several gateways (Redis)."""

    name = CHECK_NAME

    def __init__(
        self,
        config: LimitsConfig,
        *,
        counters: Counters | None = None,
        reporter: LimitReporter | None = None,
    ) -> None:
        self.config = config
        self.reporter = reporter if reporter is not None else LimitReporter()
        self.rules: tuple[RateRule, ...] = rate_rules(config)
        self.request_rule = request_rule(config)
        self.counters = counters
        if counters is None and (self.rules or self.request_rule is not None):
            self.counters = Counters(
                config.storage,
                strategy=config.strategy,
                on_failure=config.on_storage_failure,
                health=self.reporter,
            )
        self.in_flight = InFlight(config.concurrent_per_agent, config.concurrent_per_server)
        self._indexed: set[tuple[str, tuple[str, ...]]] = set()
        self._caps_concurrency = config.concurrent_per_agent is not None or config.concurrent_per_server is not None

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        cap = self.config.max_request_bytes
        if cap is not None:
            size = json_size(call.arguments)
            if size > cap:
                message = (
                    f"request too large: the arguments are {size} bytes, over the max_request_bytes limit "
                    f"of {cap} bytes; send less"
                )
                return self._refuse(call, Refusal(f"max_request_bytes {cap}", _agent(call), message, None, 60.0))
        if self._caps_concurrency:
            full = self.in_flight.enter(call)
            if full is not None:
                return self._refuse(call, self._concurrency_refusal(call, *full))
        for rule in self.rules:
            if rule.applies(call):
                verdict = await self._count(call, rule)
                if verdict is not None:
                    return verdict
        return None

    async def _count(self, call: ToolCall, rule: RateRule) -> Verdict | None:
        try:
            over = await self._over(rule, rule.identifiers(call))
        except CountersUnavailable as exc:
            return Verdict(Decision.DENY, _unavailable(exc), check=CHECK_NAME)
        if over is None:
            return None
        limit, retry_after, window = over
        where = f" ({rule.glob} on {call.server}/{call.tool})" if rule.glob is not None else ""
        message = f"rate limit {limit} exceeded for {rule.subject(call)}{where}; retry after {retry_after:.0f} s"
        return self._refuse(call, Refusal(limit, rule.subject(call), message, retry_after, window))

    async def _over(self, rule: RateRule, identifiers: tuple[str, ...]) -> tuple[str, float, float] | None:
        """Count one call against `rule`: None if it passes, else (limit in words, retry after, window)."""
        assert self.counters is not None
        key = (rule.name, identifiers)
        if key not in self._indexed:
            self._indexed.add(key)
            if not await self.counters.remember(index_entry(rule, identifiers)):
                self._indexed.discard(key)  # try again on the next call
        for item in rule.items:
            if await self.counters.hit(item, *identifiers):
                continue
            stats = await self.counters.stats(item, *identifiers)
            retry_after = float(max(1, math.ceil(stats.reset_time - time.time())))
            return f"{rule.name} {describe(item)}", retry_after, float(item.get_expiry())
        return None

    async def check_request(self, principal: Principal, server: str) -> RequestRefusal | None:
        """Count one HTTP request against `requests_per_agent`: None if it passes (or none is set)."""
        rule = self.request_rule
        if rule is None:
            return None
        agent = f"agent {principal.agent!r}"
        try:
            over = await self._over(rule, ("requests", escape_part(principal.agent)))
        except CountersUnavailable as exc:
            return RequestRefusal(503, 1.0, _unavailable(exc))
        if over is None:
            return None
        limit, retry_after, window = over
        message = f"rate limit {limit} exceeded for {agent}; retry after {retry_after:.0f} s"
        self.reporter.refused_request(principal.agent, server, Refusal(limit, agent, message, retry_after, window))
        return RequestRefusal(429, retry_after, message)

    def _concurrency_refusal(self, call: ToolCall, cap_name: str, cap: int) -> Refusal:
        subject = _agent(call) if cap_name == "concurrent_per_agent" else f"server {call.server!r}"
        message = (
            f"concurrency limit {cap_name} {cap} reached: {subject} already has {cap} calls in flight; "
            "retry when one finishes"
        )
        return Refusal(f"{cap_name} {cap}", subject, message, None, CONCURRENCY_BURST_GAP)

    def _refuse(self, call: ToolCall, refusal: Refusal) -> Verdict:
        self.reporter.refused(call, refusal)
        return Verdict(Decision.DENY, refusal.message, check=CHECK_NAME)

    async def usage(self) -> list[UsageRow]:
        """Each counter in use against its limit, and the calls in flight here."""
        in_flight = self.in_flight if self._caps_concurrency else None
        return await snapshot(self.config, self.counters, in_flight)

    def tool_call_ended(self, call: ToolCall) -> None:
        if self._caps_concurrency:
            self.in_flight.leave(call)

    async def check_tool_result(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any] | None:
        cap = self.config.max_response_bytes
        if cap is None:
            return None
        size = json_size(result)
        if size <= cap:
            return None
        message = (
            f"response too large: the result is {size} bytes, over the max_response_bytes limit of {cap} bytes, "
            f"so Bastion withheld it [check: {CHECK_NAME}]"
        )
        self.reporter.refused(call, Refusal(f"max_response_bytes {cap}", _agent(call), message, None, 60.0))
        return tool_error(message)


def _unavailable(exc: CountersUnavailable) -> str:
    return f"{exc}, so rate-limited calls are refused until it is back (limits.on_storage_failure: deny); retry later"


def _agent(call: ToolCall) -> str:
    return f"agent {call.principal.agent!r}"
