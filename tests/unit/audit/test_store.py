"""The audit store contract, on every backend: durable, group-committed, chained, searchable, recovering."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import anyio
import pytest

from bastion.audit.chain import decode_row
from bastion.audit.events import CallCompleted, CallRequested, ToolChanged, VerdictReached
from bastion.audit.export import export_events
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.search import search, verify_log
from bastion.audit.store import AuditStore, AuditStoreError
from tests.unit.audit.conftest import Backend

pytestmark = pytest.mark.anyio
AT = 1_795_586_105.123


def requested(n: int, *, agent: str = "agent-a", arguments: Any = None, at: float = AT) -> CallRequested:
    return CallRequested(
        time=at + n,
        agent=agent,
        server="db",
        correlation_id=f"c{n}",
        method="tools/call",
        tool="query",
        arguments=arguments if arguments is not None else {"n": n},
        transport="streamable-http",
    )


def all_events(store: AuditStore) -> list[Any]:
    return [decode_row(row) for row in store.rows(EventQuery(), newest_first=False)]


async def test_durable_record_is_committed_when_it_returns(store: AuditStore, backend: Backend) -> None:
    await store.record(requested(1), durable=True)

    assert backend.sql("SELECT seq, type, correlation_id FROM events", ()) == [(1, "call.requested", "c1")]


async def test_events_round_trip_with_their_fields(store: AuditStore) -> None:
    await store.record(requested(1, arguments={"sql": "select 'héllo 日本'"}))
    await store.record(
        CallCompleted(
            time=AT + 2,
            agent="agent-a",
            server="db",
            correlation_id="c1",
            method="tools/call",
            tool="query",
            outcome="denied",
            latency_ms=12.5,
            is_error=True,
            result_size=7,
            error="no",
            rule="policy",
        ),
        durable=False,
    )
    await store.flush()

    first, second = all_events(store)

    assert (first.seq, first.type, first.time, first.agent, first.server) == (
        1,
        "call.requested",
        AT + 1,
        "agent-a",
        "db",
    )
    assert first.details == {
        "method": "tools/call",
        "tool": "query",
        "arguments": {"sql": "select 'héllo 日本'"},
        "transport": "streamable-http",
    }
    assert (second.seq, second.type, second.correlation_id) == (2, "call.completed", "c1")
    assert second.details["outcome"] == "denied"
    assert second.details["rule"] == "policy"
    assert second.details["latency_ms"] == 12.5


async def test_concurrent_durable_records_share_commits(store: AuditStore) -> None:
    commits_before = store.commits  # type: ignore[attr-defined]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(store.record, requested(n))

    assert len(all_events(store)) == 200
    assert store.commits - commits_before <= 40  # type: ignore[attr-defined]
    assert verify_log(store).ok


async def test_record_nowait_is_committed_by_flush(store: AuditStore) -> None:
    for n in range(20):
        store.record_nowait(ToolChanged(server="git", tool=f"t{n}", old_digest="a", new_digest="b"))

    await store.flush()

    assert [e.details["tool"] for e in all_events(store)] == [f"t{n}" for n in range(20)]


async def test_record_nowait_works_from_another_thread(store: AuditStore) -> None:
    def from_thread() -> None:
        store.record_nowait(ToolChanged(server="git", tool="log", old_digest="a", new_digest="b"))

    await anyio.to_thread.run_sync(from_thread)
    await store.flush()

    assert [e.type for e in all_events(store)] == ["tool.changed"]


async def test_closed_store_refuses_and_is_not_writable(backend: Backend) -> None:
    audit = backend.make()
    await audit.open()
    for n in range(50):
        await audit.record(requested(n), durable=False)
    await audit.close()
    await audit.close()

    assert len(all_events(audit)) == 50
    with pytest.raises(AuditStoreError, match="closed"):
        await audit.record(requested(99))
    with pytest.raises(AuditStoreError, match="closed"):
        audit.record_nowait(requested(99))
    assert not await audit.check_writable()


async def test_reopening_continues_the_chain(backend: Backend) -> None:
    for start in (0, 10):
        audit = backend.make()
        await audit.open()
        for n in range(start, start + 10):
            await audit.record(requested(n), durable=False)
        await audit.close()

    assert [e.seq for e in all_events(audit)] == list(range(1, 21))
    assert verify_log(audit).ok


async def test_two_writers_on_one_database_keep_one_chain(backend: Backend) -> None:
    """Two stores (two processes, or two replicas) interleave appends without forking the chain."""
    first, second = backend.make(), backend.make()
    await first.open()
    await second.open()
    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(100):
                    tg.start_soon(first.record, requested(n, agent="one"))
                    tg.start_soon(second.record, requested(n, agent="two"))
    finally:
        await first.close()
        await second.close()

    events = all_events(first)
    assert [e.seq for e in events] == list(range(1, 201))
    assert {e.agent for e in events} == {"one", "two"}
    report = verify_log(first)
    assert report.ok, report


# Tamper evidence


async def _log_of(store: AuditStore, count: int = 6) -> None:
    for n in range(count):
        await store.record(requested(n), durable=False)
    await store.flush()


async def test_intact_log_verifies(store: AuditStore) -> None:
    await _log_of(store)

    report = verify_log(store)

    assert report.ok
    assert (report.checked, report.last_seq) == (6, 6)


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        pytest.param("UPDATE events SET data = replace(data, '\"n\":3', '\"n\":33') WHERE seq = 4", 4, id="edit-data"),
        pytest.param("UPDATE events SET agent = 'someone-else' WHERE seq = 2", 2, id="edit-agent"),
        pytest.param("UPDATE events SET time = time + 1 WHERE seq = 5", 5, id="edit-time"),
        pytest.param("DELETE FROM events WHERE seq = 3", 3, id="delete-middle"),
        pytest.param("DELETE FROM events WHERE seq = 1", 1, id="delete-first"),
        pytest.param("DELETE FROM events WHERE seq = 6", 6, id="delete-last"),
    ],
)
async def test_tampering_is_caught_at_the_first_bad_sequence_number(
    store: AuditStore, backend: Backend, tamper: str, first_bad: int
) -> None:
    await _log_of(store)

    backend.sql(tamper, ())
    report = verify_log(store)

    assert not report.ok
    assert report.first_bad_seq == first_bad, report


async def test_reordering_is_caught(store: AuditStore, backend: Backend) -> None:
    await _log_of(store)
    # Swap the contents of events 3 and 4, hashes and all, keeping the sequence numbers in place.
    backend.sql("UPDATE events SET seq = -3 WHERE seq = 3", ())
    backend.sql("UPDATE events SET seq = 3 WHERE seq = 4", ())
    backend.sql("UPDATE events SET seq = 4 WHERE seq = -3", ())

    report = verify_log(store)

    assert report.first_bad_seq == 3, report


async def test_rewriting_a_hash_to_match_still_breaks_the_next_link(store: AuditStore, backend: Backend) -> None:
    await _log_of(store)
    backend.sql("UPDATE events SET data = replace(data, '\"n\":1', '\"n\":11') WHERE seq = 2", ())
    # A forger who recomputes this row's hash (but cannot rewrite every later one) is still caught.
    from bastion.audit.chain import link

    [row] = list(store.rows(EventQuery(correlation_id="c1"), newest_first=False))
    [previous] = list(store.rows(EventQuery(correlation_id="c0"), newest_first=False))
    backend.sql(backend.q("UPDATE events SET hash = ? WHERE seq = 2"), (link(previous.hash, 2, row.row),))

    assert verify_log(store).first_bad_seq == 3


# Retention


async def test_retention_by_count_keeps_the_chain_verifiable(backend: Backend) -> None:
    audit = backend.make(retention=Retention(max_events=4))
    await audit.open()
    await _log_of(audit, 10)
    await audit.prune_now()
    await audit.record(requested(50))
    await audit.close()

    events = all_events(audit)
    start, _head = audit.chain_ends()

    assert start is not None
    assert start.seq == 6
    assert [e.seq for e in events] == [7, 8, 9, 10, 11, 12]
    assert events[-2].type == "audit.pruned"
    assert events[-2].details["removed"] == 6
    assert verify_log(audit).ok


async def test_retention_by_age_removes_old_events(backend: Backend) -> None:
    audit = backend.make(retention=Retention(max_age_s=3600))
    await audit.open()
    for n in range(3):
        await audit.record(requested(n, at=1_000.0), durable=False)
    for n in range(3, 5):
        await audit.record(requested(n, at=4_000_000_000.0), durable=False)
    await audit.prune_now()
    await audit.close()

    assert [e.correlation_id for e in all_events(audit) if e.type == "call.requested"] == ["c3", "c4"]
    assert verify_log(audit).ok


async def test_forged_checkpoint_is_caught(backend: Backend) -> None:
    """Deleting old events and writing a checkpoint by hand is not retention: no audit.pruned attests it."""
    audit = backend.make()
    await audit.open()
    await _log_of(audit, 6)
    await audit.close()
    [(hash3,)] = backend.sql("SELECT hash FROM events WHERE seq = 3", ())
    backend.sql("DELETE FROM events WHERE seq <= 3", ())
    backend.sql(
        backend.q("INSERT INTO audit_checkpoints (seq, hash, time, removed) VALUES (?, ?, ?, ?)"), (3, hash3, 0.0, 3)
    )

    report = verify_log(audit)

    assert report.first_bad_seq == 4, report
    assert "not attested" in report.problem


# Search


async def _searchable(store: AuditStore) -> None:
    await store.record(requested(1, agent="alice", arguments={"q": "quarterly revenue report"}), durable=False)
    await store.record(requested(2, agent="bob", arguments={"q": "customer list"}), durable=False)
    await store.record(
        VerdictReached(
            time=AT + 3,
            agent="bob",
            server="db",
            correlation_id="c2",
            tool="query",
            verdict="deny",
            rule="no-bulk-export",
            reason="SELECT * over customers",
        ),
        durable=False,
    )
    await store.record(
        ToolChanged(time=AT + 4, server="git", tool="log", old_digest="a", new_digest="b"), durable=False
    )
    await store.flush()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (EventQuery(), [4, 3, 2, 1]),
        (EventQuery(agent="bob"), [3, 2]),
        (EventQuery(server="git"), [4]),
        (EventQuery(tool="query"), [3, 2, 1]),
        (EventQuery(types=("call.verdict", "tool.changed")), [4, 3]),
        (EventQuery(verdict="deny"), [3]),
        (EventQuery(rule="no-bulk-export"), [3]),
        (EventQuery(correlation_id="c2"), [3, 2]),
        (EventQuery(since=AT + 2, until=AT + 4), [3, 2]),
        (EventQuery(text="revenue"), [1]),
        (EventQuery(text="customer"), [2]),
        (EventQuery(text="customers"), [3]),
        (EventQuery(text="QUARTERLY report"), [1]),
        (EventQuery(text="quarterly customer"), []),
        (EventQuery(text='"; DROP TABLE events; --'), []),
        (EventQuery(agent="bob", text="customer"), [2]),
    ],
)
async def test_search_filters_newest_first(store: AuditStore, query: EventQuery, expected: list[int]) -> None:
    await _searchable(store)

    page = search(store, query, limit=50)

    assert [e.seq for e in page.events] == expected
    assert page.next_cursor is None


async def test_search_pages_with_a_cursor(store: AuditStore) -> None:
    await _log_of(store, 7)

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = search(store, EventQuery(), limit=3, cursor=cursor)
        seen += [e.seq for e in page.events]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert pages == 3
    with pytest.raises(ValueError, match="cursor"):
        search(store, EventQuery(), cursor="abc")


async def test_count_matches_search(store: AuditStore) -> None:
    await _searchable(store)

    assert store.count(EventQuery()) == 4
    assert store.count(EventQuery(agent="bob")) == 2
    assert store.count(EventQuery(text="customer")) == 1


# Modes


@pytest.mark.parametrize(
    ("mode", "stored"),
    [
        ("full", {"user": "ann", "password": "hunter2", "note": "key AKIAIOSFODNN7EXAMPLE"}),
        ("redacted", {"user": "ann", "password": "[REDACTED]", "note": "key [REDACTED:aws-access-key-id]"}),
        ("shape", {"user": "string", "password": "string", "note": "string"}),
    ],
)
async def test_arguments_are_stored_per_mode(backend: Backend, mode: Any, stored: dict[str, Any]) -> None:
    audit = backend.make(policy=PayloadPolicy(mode))
    await audit.open()
    arguments = {"user": "ann", "password": "hunter2", "note": "key AKIAIOSFODNN7EXAMPLE"}
    await audit.record(requested(1, arguments=arguments))
    await audit.close()

    [event] = all_events(audit)
    assert event.details["arguments"] == stored
    if mode != "full":
        assert "hunter2" not in json.dumps(backend.sql("SELECT data FROM events", ()))


# Export


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
async def test_export_holds_every_event(store: AuditStore, fmt: Any) -> None:
    await _searchable(store)
    out = io.StringIO()

    count = export_events(store, EventQuery(), fmt, out)

    assert count == 4
    assert out.getvalue().count("quarterly revenue report") == 1


async def test_export_reads_a_snapshot_while_the_writer_writes(store: AuditStore) -> None:
    await _log_of(store, 300)
    exported: list[int] = []
    reading, written = threading.Event(), threading.Event()

    def export_across_writes() -> None:
        for row in store.rows(EventQuery(), newest_first=False):
            exported.append(row.seq)
            reading.set()
            written.wait(timeout=30)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, export_across_writes)
            await anyio.to_thread.run_sync(reading.wait)
            for n in range(300, 400):
                await store.record(requested(n))
            written.set()

    assert exported == list(range(1, 301))
    assert store.count(EventQuery()) == 400


async def test_reading_a_log_that_does_not_exist_raises_a_store_error(backend: Backend) -> None:
    never_opened = backend.make()  # no file, no tables: nothing was ever written

    with pytest.raises(AuditStoreError):
        list(never_opened.rows(EventQuery(), newest_first=False))  # a stream (export, verify)
    with pytest.raises(AuditStoreError):
        list(never_opened.rows(EventQuery(), newest_first=True, limit=50))  # a page (search)


async def test_a_stream_stopped_early_leaves_the_store_usable(store: AuditStore) -> None:
    await _log_of(store, 50)

    stream = store.rows(EventQuery(), newest_first=False)
    first = next(stream)
    stream.close()  # type: ignore[attr-defined]  # a generator, on both backends

    assert first.seq == 1
    assert [row.seq for row in store.rows(EventQuery(), newest_first=False)] == list(range(1, 51))
