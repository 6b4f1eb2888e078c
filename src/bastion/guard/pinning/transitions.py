"""How a pin changes (first sight, change, removal, acceptance), written once for both stores.

Each function runs inside the caller's transaction, through a `Cursor`: the SQL is written
with `?` placeholders, which the PostgreSQL store's cursor turns into `%s`.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, cast

from bastion.guard.pinning.events import PinEvent, PinEventKind
from bastion.guard.pinning.fingerprint import changed_fields
from bastion.guard.pinning.scanner import Finding
from bastion.guard.pinning.store import PinRecord, PinState, PinStoreError

COLUMNS = (
    "server, tool, state, trusted_hash, trusted_definition, current_hash, current_definition, findings, "
    "first_seen, changed_at, removed_at, accepted_by, accepted_at"
)
EVENT_COLUMNS = "kind, server, tool, time, hash, previous_hash, actor, detail"


class Cursor(Protocol):
    """Runs one statement (with `?` placeholders) and returns its rows (empty for a write)."""

    def __call__(self, statement: str, params: Sequence[Any] = ()) -> builtins.list[tuple[Any, ...]]: ...


def record_of(row: tuple[Any, ...]) -> PinRecord:
    (server, tool, state, trusted_hash, trusted_def, current_hash, current_def, findings, *times) = row
    first_seen, changed_at, removed_at, accepted_by, accepted_at = times
    return PinRecord(
        server=server,
        tool=tool,
        state=cast(PinState, state),
        trusted_hash=trusted_hash,
        current_hash=current_hash,
        current_definition=json.loads(current_def),
        trusted_definition=None if trusted_def is None else json.loads(trusted_def),
        findings=tuple(Finding(**item) for item in json.loads(findings)),
        first_seen=first_seen,
        changed_at=changed_at,
        removed_at=removed_at,
        accepted_by=accepted_by,
        accepted_at=accepted_at,
    )


def event_of(row: tuple[Any, ...]) -> PinEvent:
    kind, server, tool, at, hash_, previous, actor, detail = row
    return PinEvent(
        kind=cast(PinEventKind, kind),
        server=server,
        tool=tool,
        time=at,
        hash=hash_,
        previous_hash=previous,
        actor=actor,
        detail=tuple(json.loads(detail)),
    )


def _findings_json(findings: tuple[Finding, ...]) -> str:
    return json.dumps([{"kind": f.kind, "where": f.where, "excerpt": f.excerpt} for f in findings])


def read(cursor: Cursor, server: str, tool: str) -> PinRecord | None:
    rows = cursor(f"SELECT {COLUMNS} FROM pins WHERE server = ? AND tool = ?", (server, tool))
    return record_of(rows[0]) if rows else None


def list_pins(cursor: Cursor, server: str | None) -> builtins.list[PinRecord]:
    rows = cursor(
        f"SELECT {COLUMNS} FROM pins WHERE CAST(? AS TEXT) IS NULL OR server = ? ORDER BY server, tool",
        (server, server),
    )
    return [record_of(row) for row in rows]


def list_events(cursor: Cursor, server: str | None, tool: str | None, limit: int) -> builtins.list[PinEvent]:
    rows = cursor(
        f"SELECT {EVENT_COLUMNS} FROM pin_events WHERE (CAST(? AS TEXT) IS NULL OR server = ?) "
        "AND (CAST(? AS TEXT) IS NULL OR tool = ?) ORDER BY id DESC LIMIT ?",
        (server, server, tool, tool, limit),
    )
    return [event_of(row) for row in reversed(rows)]


def observe(
    cursor: Cursor,
    server: str,
    tool: str,
    fingerprint: str,
    definition: Mapping[str, Any],
    findings: tuple[Finding, ...],
    now: float,
) -> tuple[PinRecord, builtins.list[PinEvent]]:
    """Record that the server declares `tool` as `definition` now; the pin after, and what happened."""
    events: list[PinEvent] = []
    record = read(cursor, server, tool)
    if record is None:
        state: PinState = "held" if findings else "pinned"
        cursor(
            "INSERT INTO pins (server, tool, state, trusted_hash, trusted_definition, current_hash, "
            "current_definition, findings, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                server,
                tool,
                state,
                None if findings else fingerprint,
                None if findings else json.dumps(definition),
                fingerprint,
                json.dumps(definition),
                _findings_json(findings),
                now,
            ),
        )
        detail = tuple(str(f) for f in findings)
        events.append(PinEvent(state, server, tool, now, hash=fingerprint, detail=detail))
    else:
        if record.removed_at is not None:
            cursor("UPDATE pins SET removed_at = NULL WHERE server = ? AND tool = ?", (server, tool))
            events.append(PinEvent("restored", server, tool, now, hash=fingerprint))
        if record.current_hash != fingerprint:
            # Strict: a changed tool stays blocked until accepted, even if it changes back.
            new_state: PinState = "held" if record.state == "held" else "changed"
            cursor(
                "UPDATE pins SET state = ?, current_hash = ?, current_definition = ?, findings = ?, "
                "changed_at = ? WHERE server = ? AND tool = ?",
                (new_state, fingerprint, json.dumps(definition), _findings_json(findings), now, server, tool),
            )
            fields = changed_fields(record.current_definition, definition)
            detail = (", ".join(fields) or "representation", *(str(f) for f in findings))
            events.append(PinEvent("changed", server, tool, now, fingerprint, record.current_hash, detail=detail))
    insert_events(cursor, events)
    updated = read(cursor, server, tool)
    assert updated is not None
    return updated, events


def mark_removed(cursor: Cursor, server: str, present: Collection[str], now: float) -> builtins.list[PinEvent]:
    """Mark every listed tool of `server` that is not in `present` removed; the events."""
    rows = cursor("SELECT tool, current_hash FROM pins WHERE server = ? AND removed_at IS NULL", (server,))
    gone = [(tool, current) for tool, current in rows if tool not in present]
    for tool, _ in gone:
        cursor("UPDATE pins SET removed_at = ? WHERE server = ? AND tool = ?", (now, server, tool))
    events = [PinEvent("removed", server, tool, now, hash=current) for tool, current in gone]
    insert_events(cursor, events)
    return events


def accept(
    cursor: Cursor, server: str, tool: str, actor: str, expected_hash: str | None, now: float
) -> tuple[PinRecord, PinEvent]:
    """Trust the current definition; raises `PinStoreError` (see `PinStore.accept`)."""
    record = read(cursor, server, tool)
    if record is None:
        raise PinStoreError(f"no pinned tool {tool!r} on server {server!r}; see: bastion tools list")
    if expected_hash is not None and not _matches(record.current_hash, expected_hash):
        raise PinStoreError(
            f"tool {tool!r} on server {server!r} changed again since you reviewed it "
            f"(now {record.current_hash}); review it again with: bastion tools list --server {server}"
        )
    cursor(
        "UPDATE pins SET state = 'pinned', trusted_hash = current_hash, "
        "trusted_definition = current_definition, accepted_by = ?, accepted_at = ? "
        "WHERE server = ? AND tool = ?",
        (actor, now, server, tool),
    )
    event = PinEvent(
        "accepted",
        server,
        tool,
        now,
        hash=record.current_hash,
        previous_hash=record.trusted_hash,
        actor=actor,
        detail=(f"was {record.status}",),
    )
    insert_events(cursor, [event])
    updated = read(cursor, server, tool)
    assert updated is not None
    return updated, event


def insert_events(cursor: Cursor, events: builtins.list[PinEvent]) -> None:
    for e in events:
        cursor(
            "INSERT INTO pin_events (time, server, tool, kind, hash, previous_hash, actor, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (e.time, e.server, e.tool, e.kind, e.hash, e.previous_hash, e.actor, json.dumps(list(e.detail))),
        )


def _matches(fingerprint: str, expected: str) -> bool:
    """`expected` is the whole fingerprint, or a prefix of its hex part of at least 8 digits."""
    hex_part = fingerprint.removeprefix("sha256:")
    wanted = expected.removeprefix("sha256:").lower()
    return len(wanted) >= 8 and hex_part.startswith(wanted)
