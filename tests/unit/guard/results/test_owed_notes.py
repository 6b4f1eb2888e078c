"""The agent's own argument values noted after the verdict (`owed.Owed`), as if noted before it.

A call the provenance or requested-action check cannot hold has its values noted on the event
loop's next turn; every read or write of the memory before then sees them first, so no later
result and no later call is judged differently from when they were noted in the check."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bastion.guard.results.config import ResultsConfig
from bastion.guard.results.owed import Owed
from bastion.guard.results.provenance import ProvenanceCheck
from bastion.guard.results.request_store import MemoryRequestStore
from bastion.guard.results.requested import RequestedActionCheck
from bastion.guard.results.taint import MemoryTaintStore, TaintSource, Whose
from bastion.model import Decision, Principal, ToolCall

pytestmark = pytest.mark.anyio
FLAGGED = TaintSource("c0ffee", "mail", "read_inbox", "flagged as injection (framing)", 0.0)
ACCOUNT = "US133000000121212121212"


def call(tool: str, arguments: dict[str, Any], session: str | None = "s1") -> ToolCall:
    return ToolCall("id1", Principal("a"), "banking", tool, arguments, session=session)


def provenance(store: MemoryTaintStore, **config: Any) -> ProvenanceCheck:
    return ProvenanceCheck(ResultsConfig.model_validate({"provenance": {"on_match": "deny", **config}}), store)


async def test_a_value_the_call_wrote_is_not_tainted_by_a_result_that_follows_at_once() -> None:
    # no loop turn between the verdict and the result: the memory settles what it owes first
    store = MemoryTaintStore(window=60, max_values=10)
    assert await provenance(store).check_tool_call(call("send_money", {"recipient": ACCOUNT})) is None
    assert await store.taint(Whose("a", "s1"), [ACCOUNT], FLAGGED) == []
    assert await store.find(Whose("a", "s1"), [ACCOUNT]) is None


async def test_the_values_are_noted_on_the_loops_next_turn() -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    await provenance(store).check_tool_call(call("send_money", {"recipient": ACCOUNT}))
    assert store._owed
    await asyncio.sleep(0)
    assert not store._owed
    assert await store.taint(Whose("a", "s2"), [ACCOUNT], FLAGGED) == []  # the agent's own, in any session


async def test_a_memory_holding_a_tainted_value_is_checked_before_the_call_goes() -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    await store.taint(Whose("a", "s1"), [ACCOUNT], FLAGGED)
    verdict = await provenance(store).check_tool_call(call("send_money", {"recipient": ACCOUNT}))
    assert verdict is not None
    assert verdict.decision is Decision.DENY
    assert not store._owed


@pytest.mark.parametrize(
    ("scope", "session", "owed"),
    [("both", "s1", False), ("agent", "s1", False), ("session", "s1", False), ("session", "s2", True)],
)
async def test_only_the_memories_the_scope_names_decide(scope: str, session: str, owed: bool) -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    await store.taint(Whose("a", "s1"), ["https://evil.example/x"], FLAGGED)
    assert store.note_soon(Whose("a", session), scope, lambda: [ACCOUNT]) is owed  # type: ignore[arg-type]


async def test_a_value_planted_in_the_session_is_still_held_under_session_scope() -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    check = provenance(store, scope="session")
    await store.taint(Whose("a", "s1"), [ACCOUNT], FLAGGED)
    held = await check.check_tool_call(call("send_money", {"recipient": ACCOUNT}, session="s1"))
    assert held is not None
    assert held.decision is Decision.DENY
    assert await check.check_tool_call(call("send_money", {"recipient": ACCOUNT}, session="s2")) is None


async def test_a_note_that_fails_is_logged_and_the_memory_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryTaintStore(window=60, max_values=10)

    def broken() -> list[str]:
        raise ValueError("unreadable")

    assert store.note_soon(Whose("a"), "both", broken)
    with caplog.at_level(logging.ERROR):
        assert await store.taint(Whose("a"), [ACCOUNT], FLAGGED) == [ACCOUNT]
    assert "own argument values failed" in caplog.text
    assert await store.find(Whose("a"), [ACCOUNT]) is not None


def test_nothing_is_owed_outside_an_event_loop() -> None:
    assert Owed().owe(lambda: None) is False


async def test_owed_notes_are_made_in_order_and_once() -> None:
    made: list[int] = []
    owed = Owed()
    for n in range(3):
        assert owed.owe(lambda n=n: made.append(n))  # type: ignore[misc]
    owed.settle()
    await asyncio.sleep(0)
    assert made == [0, 1, 2]


async def test_an_object_noted_later_keeps_the_time_the_call_was_judged() -> None:
    now = [100.0]
    store = MemoryRequestStore(window=3600, max_values=10, clock=lambda: now[0])
    assert store.note_soon("a", lambda: ["2026-12-24"])
    now[0] = 200.0  # a result remembered meanwhile is later than the call that named the date
    assert await store.first_seen("a", ["2026-12-24"]) == {"2026-12-24": 100.0}


async def test_a_call_with_no_action_to_judge_notes_what_it_names() -> None:
    store = MemoryRequestStore(window=3600, max_values=10)
    check = RequestedActionCheck(ResultsConfig(), store)
    assert await check.check_tool_call(call("read_file", {"path": "/tmp/report.txt", "amount": "250 EUR"})) is None
    seen = await store.first_seen("a", ["/tmp/report.txt"])
    assert set(seen) == {"/tmp/report.txt"}
