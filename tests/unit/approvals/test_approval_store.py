from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.approvals.model import ApprovalError, ApprovalState, call_fingerprint
from bastion.approvals.sqlite_store import SqliteApprovalStore
from bastion.approvals.store import ApprovalStore
from tests.unit.state_backends import StateBackend


def held(store: ApprovalStore, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "agent": "bot",
        "server": "db",
        "tool": "query",
        "arguments": {"sql": "SELECT *", "limit": 5},
        "rule": "unbounded-select",
        "reason": "reads a whole table",
        "expire_after": 100.0,
    }
    return store.create(**(fields | overrides))


def test_create_and_read_back(store: ApprovalStore, clock: Any) -> None:
    approval = held(store)
    assert len(approval.id) == 8
    again = store.get(approval.id)
    assert again == approval
    assert again.state is ApprovalState.PENDING
    assert again.expires_at == clock.now + 100
    assert store.list(ApprovalState.PENDING) == [approval]
    assert store.get("nope") is None


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    a = call_fingerprint("bot", "db", "query", {"x": 1, "y": [1, 2]})
    assert a == call_fingerprint("bot", "db", "query", {"y": [1, 2], "x": 1})
    for other in [
        call_fingerprint("bot2", "db", "query", {"x": 1, "y": [1, 2]}),
        call_fingerprint("bot", "db2", "query", {"x": 1, "y": [1, 2]}),
        call_fingerprint("bot", "db", "query2", {"x": 1, "y": [1, 2]}),
        call_fingerprint("bot", "db", "query", {"x": 1, "y": [2, 1]}),
        call_fingerprint("bot", "db", "query", {"x": "1", "y": [1, 2]}),
    ]:
        assert other != a


def test_decide_records_who_when_and_why(store: ApprovalStore, clock: Any) -> None:
    approval = held(store)
    clock.advance(5)
    decided = store.decide(approval.id, approve=False, decided_by="cli:alice", reason="not today")
    assert (decided.state, decided.decided_by, decided.decided_at, decided.decision_reason) == (
        ApprovalState.DENIED,
        "cli:alice",
        clock.now,
        "not today",
    )
    with pytest.raises(ApprovalError, match="already denied"):
        store.decide(approval.id, approve=True, decided_by="cli:bob")
    with pytest.raises(ApprovalError, match="no approval"):
        store.decide("missing1", approve=True, decided_by="cli:bob")
    with pytest.raises(ValueError, match="who decided"):
        store.decide(held(store).id, approve=True, decided_by="")


def test_expired_approvals_cannot_be_decided_and_are_swept_once(store: ApprovalStore, clock: Any) -> None:
    approval = held(store)
    other = held(store, expire_after=1000.0, arguments={"sql": "SELECT 1"})
    clock.advance(100)
    assert store.get(approval.id).state is ApprovalState.EXPIRED  # type: ignore[union-attr]
    with pytest.raises(ApprovalError, match="already expired"):
        store.decide(approval.id, approve=True, decided_by="cli:alice")
    assert [a.id for a in store.expire_due()] == [approval.id]
    assert store.expire_due() == []
    assert store.get(other.id).state is ApprovalState.PENDING  # type: ignore[union-attr]
    assert store.pending_for(approval.fingerprint) is None


def test_an_approval_admits_one_identical_call_within_the_window(store: ApprovalStore, clock: Any) -> None:
    approval = held(store)
    assert store.consume_approved(approval.fingerprint, 60) is None  # pending is not approved
    store.decide(approval.id, approve=True, decided_by="api:ops")
    different = call_fingerprint("bot", "db", "query", {"sql": "SELECT *", "limit": 6})
    assert store.consume_approved(different, 60) is None
    used = store.consume_approved(approval.fingerprint, 60)
    assert used is not None
    assert used.id == approval.id
    assert store.consume_approved(approval.fingerprint, 60) is None
    assert not store.consume(approval.id)

    late = held(store)
    store.decide(late.id, approve=True, decided_by="api:ops")
    clock.advance(61)
    assert store.consume_approved(late.fingerprint, 60) is None


def test_always_creates_a_rule_for_exactly_those_arguments(store: ApprovalStore) -> None:
    approval = held(store)
    with pytest.raises(ApprovalError, match="approvals only"):
        store.decide(approval.id, approve=False, decided_by="cli:a", always=True)
    store.decide(approval.id, approve=True, decided_by="cli:alice", reason="fine", always=True)
    rule = store.matching_rule("bot", "db", "query", {"limit": 5, "sql": "SELECT *"})
    assert rule is not None
    assert (rule.created_by, rule.approval_id, rule.reason) == ("cli:alice", approval.id, "fine")
    assert store.matching_rule("bot", "db", "query", {"limit": 6, "sql": "SELECT *"}) is None
    assert store.matching_rule("other", "db", "query", {"limit": 5, "sql": "SELECT *"}) is None
    assert store.rules() == [rule]
    assert store.revoke_rule(rule.id)
    assert store.matching_rule("bot", "db", "query", {"limit": 5, "sql": "SELECT *"}) is None


@pytest.mark.anyio
async def test_a_decision_by_another_connection_wakes_the_waiter(store: ApprovalStore, backend: StateBackend) -> None:
    approval = held(store)
    other = backend.approvals()
    decided = threading.Event()

    def decide_when_asked() -> None:
        decided.wait(10)
        other.decide(approval.id, approve=True, decided_by="cli:alice")

    worker = threading.Thread(target=decide_when_asked)
    worker.start()
    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                result: list[Any] = []

                async def wait() -> None:
                    result.append(await store.wait_for_decision(approval.id, 60))

                tg.start_soon(wait)
                decided.set()
        assert result[0].state is ApprovalState.APPROVED
        assert result[0].decided_by == "cli:alice"
    finally:
        worker.join()


@pytest.mark.anyio
async def test_wait_returns_the_pending_approval_after_the_wait(store: ApprovalStore) -> None:
    approval = held(store)
    with anyio.fail_after(10):
        result = await store.wait_for_decision(approval.id, 0.05)
    assert result.state is ApprovalState.PENDING


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "approvals.db"
    SqliteApprovalStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteApprovalStore(path)


def test_an_id_already_taken_is_drawn_again_and_never_overwrites(
    store: ApprovalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short ids collide sometimes: the store draws a new one rather than failing or replacing a row."""
    import bastion.approvals.rows as rows  # draws the ids

    drawn = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(rows.secrets, "token_hex", lambda _n: next(drawn))  # fault: force a collision
    first = held(store)
    second = held(store, tool="other")
    assert (first.id, second.id) == ("aaaaaaaa", "bbbbbbbb")
    first_again, second_again = store.get("aaaaaaaa"), store.get("bbbbbbbb")
    assert first_again is not None
    assert first_again.tool == "query"
    assert second_again is not None
    assert second_again.tool == "other"

    monkeypatch.setattr(rows.secrets, "token_hex", lambda _n: "aaaaaaaa")  # every id taken
    with pytest.raises(Exception, match=r"(?i)unique"):
        held(store, tool="third")
    assert [a.tool for a in store.list()] == ["query", "other"]
