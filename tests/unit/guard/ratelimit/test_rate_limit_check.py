"""The rate-limit check on memory counters: each level, concurrency and size caps, messages,
audit events and one alert per burst."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bastion.alerts.model import Alert, AlertKind
from bastion.audit.events import AuditEvent, RateLimited
from bastion.guard.pipeline import GuardPipeline
from bastion.guard.ratelimit import LimitReporter, LimitsConfig, RateLimitCheck
from bastion.guard.server_access import ServerAccessCheck
from bastion.model import Decision, Principal, ToolCall

pytestmark = pytest.mark.anyio

_ids = itertools.count()


def call(agent: str = "bot", server: str = "time", tool: str = "get_current_time", **arguments: Any) -> ToolCall:
    return ToolCall(f"c{next(_ids)}", Principal(agent), server, tool, arguments)


class Recorded:
    """Where the reporter's audit events and alerts go (the gateway passes its bridge and dispatcher)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.alerts: list[Alert] = []
        self.now = 1000.0

    def emit(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def reporter(self) -> LimitReporter:
        return LimitReporter(self.events.append, self, clock=lambda: self.now)


def check_of(recorded: Recorded | None = None, **limits: Any) -> RateLimitCheck:
    reporter = recorded.reporter() if recorded is not None else None
    return RateLimitCheck(LimitsConfig.model_validate(limits), reporter=reporter)


async def allowed(check: RateLimitCheck, c: ToolCall) -> bool:
    verdict = await check.check_tool_call(c)
    check.tool_call_ended(c)
    return verdict is None


async def test_per_agent_applies_to_each_agent() -> None:
    check = check_of(per_agent="3/minute")
    assert [await allowed(check, call("a")) for _ in range(4)] == [True, True, True, False]
    assert await allowed(check, call("b"))  # another agent has its own budget
    verdict = await check.check_tool_call(call("a"))
    assert verdict is not None
    assert verdict.decision is Decision.DENY
    assert verdict.check == "rate-limit"
    assert verdict.reason.startswith("rate limit per_agent 3/minute exceeded for agent 'a'; retry after ")
    assert verdict.reason.endswith(" s")
    seconds = int(verdict.reason.rsplit(" ", 2)[1])
    assert 1 <= seconds <= 60


async def test_per_agent_server_counts_each_server_apart() -> None:
    check = check_of(per_agent_server="1/minute")
    assert await allowed(check, call("a", "time"))
    assert await allowed(check, call("a", "git"))
    verdict = await check.check_tool_call(call("a", "git"))
    assert verdict is not None
    assert "per_agent_server 1/minute exceeded for agent 'a' on server 'git'" in verdict.reason


async def test_per_tool_globs_by_agent_and_for_all() -> None:
    check = check_of(per_tool={"git/*": "1/minute", "delete_*": {"rate": "1/hour", "per": "all"}})
    assert await allowed(check, call("a", "git", "log"))
    assert not await allowed(check, call("a", "git", "status"))  # same glob, same agent
    assert await allowed(check, call("b", "git", "log"))  # per agent by default
    assert await allowed(check, call("a", "time", "get_current_time"))  # no glob matches
    assert await allowed(check, call("a", "files", "delete_file"))
    verdict = await check.check_tool_call(call("b", "crm", "delete_customer"))  # one budget for everyone
    assert verdict is not None
    assert "per_tool delete_* 1/hour exceeded for all agents (delete_* on crm/delete_customer)" in verdict.reason


async def test_global_ceiling_and_agent_overrides() -> None:
    check = check_of(per_agent="1/minute", agents={"batch": "3/minute"}, **{"global": "4/minute"})
    assert await allowed(check, call("a"))
    assert not await allowed(check, call("a"))
    assert [await allowed(check, call("batch")) for _ in range(4)] == [True, True, True, False]
    verdict = await check.check_tool_call(call("c"))
    assert verdict is not None
    assert "global 4/minute exceeded for all agents" in verdict.reason


async def test_several_rates_on_one_line() -> None:
    check = check_of(per_agent="2/second; 3/minute")
    results = [await allowed(check, call("a")) for _ in range(3)]
    assert results == [True, True, False]


async def test_concurrency_caps_refuse_at_once_and_free_the_slot() -> None:
    check = check_of(concurrent_per_agent=2, concurrent_per_server=3)
    first, second = call("a"), call("a")
    assert await check.check_tool_call(first) is None
    assert await check.check_tool_call(second) is None
    verdict = await check.check_tool_call(call("a"))
    assert verdict is not None
    assert verdict.reason == (
        "concurrency limit concurrent_per_agent 2 reached: agent 'a' already has 2 calls in flight; "
        "retry when one finishes"
    )
    assert await check.check_tool_call(call("b")) is None
    verdict = await check.check_tool_call(call("c"))
    assert verdict is not None
    assert "concurrent_per_server 3 reached: server 'time'" in verdict.reason
    check.tool_call_ended(first)
    check.tool_call_ended(first)  # twice is harmless
    assert await check.check_tool_call(call("a")) is None
    assert check.in_flight.agents == {"a": 2, "b": 1}


async def test_a_slot_is_freed_when_a_later_check_denies() -> None:
    check = check_of(concurrent_per_agent=1)
    pipeline = GuardPipeline([check, ServerAccessCheck()])
    outsider = ToolCall("x1", Principal("a", servers=frozenset({"git"})), "time", "t", {})
    verdict = await pipeline.evaluate(outsider)
    pipeline.ended(outsider)
    assert verdict.check == "server-access"
    assert check.in_flight.agents == {}


async def test_request_and_response_size_caps() -> None:
    recorded = Recorded()
    check = check_of(recorded, max_request_bytes=100, max_response_bytes=200)
    assert await check.check_tool_call(call(note="x" * 50)) is None
    verdict = await check.check_tool_call(call(note="x" * 200))
    assert verdict is not None
    assert "over the max_request_bytes limit of 100 bytes" in verdict.reason
    small = {"content": [{"type": "text", "text": "ok"}], "isError": False}
    assert await check.check_tool_result(call(), small) is None
    big = {"content": [{"type": "text", "text": "y" * 500}], "isError": False}
    replaced = await check.check_tool_result(call(), big)
    assert replaced is not None
    assert replaced["isError"] is True
    assert "over the max_response_bytes limit of 200 bytes" in replaced["content"][0]["text"]
    assert [e.limit for e in recorded.events if isinstance(e, RateLimited)] == [
        "max_request_bytes 100",
        "max_response_bytes 200",
    ]


async def test_every_refusal_is_audited_and_a_burst_alerts_once() -> None:
    recorded = Recorded()
    check = check_of(recorded, per_agent="2/minute")
    for _ in range(2):
        assert await allowed(check, call("a"))
    for _ in range(5):
        recorded.now += 1
        assert not await allowed(check, call("a"))
    refusals = [e for e in recorded.events if isinstance(e, RateLimited)]
    assert len(refusals) == 5
    assert {(e.agent, e.server, e.tool, e.limit) for e in refusals} == {
        ("a", "time", "get_current_time", "per_agent 2/minute")
    }
    assert all(e.retry_after_s is not None and e.retry_after_s >= 1 for e in refusals)
    assert [a.kind for a in recorded.alerts] == [AlertKind.RATE_LIMIT_TRIPPED]
    assert recorded.alerts[0].details["limit"] == "per_agent 2/minute"
    assert recorded.alerts[0].details["agent"] == "a"
    # Another agent tripping the same limit is another burst.
    for _ in range(3):
        await allowed(check, call("b"))
    assert len(recorded.alerts) == 2
    # After a quiet spell longer than the limit's window, a refusal starts a new burst.
    recorded.now += 61
    assert not await allowed(check, call("a"))
    assert len(recorded.alerts) == 3


async def test_a_refused_call_does_not_raise_call_denied() -> None:
    from bastion.guard.denial_alerts import call_denied_alerts

    recorded = Recorded()
    check = check_of(recorded, per_agent="1/minute")
    pipeline = GuardPipeline([check], on_deny=call_denied_alerts(recorded))
    for _ in range(3):
        c = call("a")
        await pipeline.evaluate(c)
        pipeline.ended(c)
    assert [a.kind for a in recorded.alerts] == [AlertKind.RATE_LIMIT_TRIPPED]


async def test_usage_snapshot_reads_without_counting() -> None:
    check = check_of(per_agent="5/minute", per_agent_server="3/minute", concurrent_per_agent=4)
    for _ in range(2):
        await allowed(check, call("a", "time"))
    held = call("b", "git")
    await check.check_tool_call(held)
    rows = {(r.limit, r.agent, r.server): (r.used, r.remaining) for r in await check.usage()}
    assert rows == {
        ("per_agent 5/minute", "a", None): (2, 3),
        ("per_agent 5/minute", "b", None): (1, 4),
        ("per_agent_server 3/minute", "a", "time"): (2, 1),
        ("per_agent_server 3/minute", "b", "git"): (1, 2),
        ("concurrent_per_agent 4", "b", None): (1, 3),
    }
    assert rows == {(r.limit, r.agent, r.server): (r.used, r.remaining) for r in await check.usage()}


async def test_agent_names_with_slashes_do_not_share_counters() -> None:
    check = check_of(per_tool={"x": "1/minute"})
    assert await allowed(check, call("a/b", tool="x"))
    assert await allowed(check, call("a", tool="x"))
    rows = await check.usage()
    assert sorted(r.agent or "" for r in rows) == ["a", "a/b"]


async def test_requests_per_agent_is_counted_at_the_front_door() -> None:
    recorded = Recorded()
    check = check_of(recorded, requests_per_agent="2/minute")
    assert check.rules == ()
    principal = Principal("a")
    assert await check.check_request(principal, "time") is None
    assert await check.check_request(principal, "git") is None
    refusal = await check.check_request(principal, "time")
    assert refusal is not None
    assert refusal.status == 429
    assert 1 <= refusal.retry_after <= 60
    assert refusal.message.startswith("rate limit requests_per_agent 2/minute exceeded for agent 'a'; retry after ")
    assert await check.check_request(Principal("b"), "time") is None
    assert await check.check_tool_call(call("a")) is None  # tool calls are not counted by it
    [event] = [e for e in recorded.events if isinstance(e, RateLimited)]
    assert (event.agent, event.server, event.tool, event.limit) == ("a", "time", None, "requests_per_agent 2/minute")
    assert [a.kind for a in recorded.alerts] == [AlertKind.RATE_LIMIT_TRIPPED]
    rows = {(r.limit, r.agent): r.used for r in await check.usage()}
    assert rows == {("requests_per_agent 2/minute", "a"): 2, ("requests_per_agent 2/minute", "b"): 1}
