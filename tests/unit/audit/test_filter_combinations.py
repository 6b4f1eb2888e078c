"""Every combination of search filters, on every backend, against an oracle in Python (issue 16:
`--text` with `--tool` failed on SQLite with "ambiguous column name: tool")."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bastion.audit.chain import decode_row
from bastion.audit.events import AuditEvent, CallCompleted, CallRequested, StoredEvent, VerdictReached
from bastion.audit.query import EventQuery
from bastion.audit.search import search
from bastion.audit.store import AuditStore
from bastion.web.audit_filters import parse_filters

pytestmark = pytest.mark.anyio
AT = 1_795_586_105.0

FILTERS: dict[str, Any] = {
    "since": AT + 2,
    "until": AT + 9,
    "agent": "alice",
    "server": "db",
    "tool": "read_query",
    "types": ("call.requested", "call.verdict"),
    "verdict": "allow",
    "rule": "big-reads",
    "correlation_id": "c2",
    "text": "customers",
}
COMBINATIONS = [names for size in range(len(FILTERS) + 1) for names in itertools.combinations(FILTERS, size)]


def seed_events() -> list[AuditEvent]:
    events: list[AuditEvent] = []
    for n in range(6):
        agent = "alice" if n % 2 else "bob"
        server = "db" if n % 3 else "files"
        tool = "read_query" if n % 2 == 0 else "list_tables"
        table = "customers" if n < 4 else "orders"
        common: dict[str, Any] = {"agent": agent, "server": server, "correlation_id": f"c{n}"}
        events += [
            CallRequested(time=AT + 2 * n, method="tools/call", tool=tool, arguments={"sql": f"select * from {table}"},
                          **common),
            VerdictReached(time=AT + 2 * n + 0.5, tool=tool, verdict="allow" if n != 3 else "ask",
                           rule="big-reads" if n in (2, 3) else None, **common),
            CallCompleted(time=AT + 2 * n + 1, method="tools/call", tool=tool, outcome="allowed", latency_ms=1.0,
                          result={"rows": [table]}, rule="big-reads" if n == 2 else None, **common),
        ]  # fmt: skip
    return events


def matches(event: StoredEvent, query: EventQuery) -> bool:
    """The oracle: what each filter means, written out."""
    details = event.details
    verdict = details.get("verdict", details.get("outcome"))
    checks = [
        query.since is None or event.time >= query.since,
        query.until is None or event.time < query.until,
        query.agent is None or event.agent == query.agent,
        query.server is None or event.server == query.server,
        query.tool is None or details.get("tool") == query.tool,
        not query.types or event.type in query.types,
        query.verdict is None or verdict == query.verdict,
        query.rule is None or details.get("rule") == query.rule,
        query.correlation_id is None or event.correlation_id == query.correlation_id,
        query.text is None or query.text in str(details),
    ]
    return all(checks)


async def seeded(store: AuditStore) -> list[StoredEvent]:
    for event in seed_events():
        await store.record(event, durable=False)
    await store.flush()
    return [decode_row(row) for row in store.rows(EventQuery(), newest_first=False)]


async def test_every_filter_combination_finds_what_the_oracle_finds(store: AuditStore) -> None:
    everything = await seeded(store)
    await store.close()  # the writer indexes every event for full-text search before it stops

    for names in COMBINATIONS:
        query = EventQuery(**{name: FILTERS[name] for name in names})
        expected = [event.seq for event in everything if matches(event, query)]

        newest_first = [row.seq for row in store.rows(query, newest_first=True)]
        oldest_first = [row.seq for row in store.rows(query, newest_first=False)]
        paged = search(store, query, limit=2)

        assert oldest_first == expected, names
        assert newest_first == expected[::-1], names
        assert store.count(query) == len(expected), names
        assert [event.seq for event in paged.events] == expected[::-1][:2], names


async def test_the_issue_case_finds_the_read_query_calls_over_customers(store: AuditStore) -> None:
    await seeded(store)
    await store.close()

    found = search(store, EventQuery(text="customers", tool="read_query")).events

    assert sorted(event.correlation_id or "" for event in found) == ["c0", "c0", "c2", "c2"]


PAGE_FILTERS = {
    "since": "2026-11-25T05:55:08",
    "until": "2026-11-25T05:55:14",
    "agent": "alice",
    "server": "db",
    "tool": "read_query",
    "type": "call.verdict",
    "verdict": "allow",
    "text": "customers",
}
PAGE_COMBINATIONS = [
    names for size in range(len(PAGE_FILTERS) + 1) for names in itertools.combinations(PAGE_FILTERS, size)
]


async def test_every_dashboard_filter_combination_reads(store: AuditStore) -> None:
    everything = await seeded(store)
    await store.close()

    for names in PAGE_COMBINATIONS:
        filters = parse_filters({name: PAGE_FILTERS[name] for name in names})
        expected = [event.seq for event in everything if matches(event, filters.query)]

        page = search(store, filters.query)

        assert [event.seq for event in page.events] == expected[::-1], names
