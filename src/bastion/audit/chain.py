"""The hash chain: each event's hash is SHA-256 of the previous hash and the event's canonical bytes.

`EventRow` is an event as every backend stores it (its details as JSON text). The canonical
bytes are the compact JSON array of the sequence number and every stored column, so editing
any column, deleting a row or swapping two rows breaks the chain from that point on.
`verify_chain` walks rows oldest first and names the first sequence number that does not fit.

Retention removes the oldest events and records a checkpoint (the last removed sequence
number and its hash); verification then starts from the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bastion.audit.events import AuditEvent, AuditPruned, StoredEvent
from bastion.audit.redact import MAX_PAYLOAD_BYTES, PayloadPolicy, cap_payload
from bastion.compact_json import canonical_json, compact_json

GENESIS_HASH = "0" * 64
"""The `previous hash` of the first event of a log."""


class EventRow(NamedTuple):
    """An event ready to store, before it has a sequence number and hash."""

    time: float
    type: str
    agent: str | None
    server: str | None
    correlation_id: str | None
    tool: str | None
    verdict: str | None
    rule: str | None
    data: str
    """The event's own fields as compact JSON (payloads as the mode says)."""


class ChainedRow(NamedTuple):
    """A stored row: its sequence number, the event, its hash."""

    seq: int
    row: EventRow
    hash: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last event removed by retention: the remaining chain starts after it."""

    seq: int
    hash: str


def encode_event(event: AuditEvent, policy: PayloadPolicy) -> EventRow:
    """The row for `event`, its payload fields stored as `policy` says."""
    details = event.details()
    for name in event.PAYLOAD_FIELDS:
        details[name] = policy.apply(details[name], result=name == "result")
    data = to_json(details)
    if len(data) > MAX_PAYLOAD_BYTES // 4 and len(data.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        for name in event.PAYLOAD_FIELDS:
            details[name] = cap_payload(details[name])
        data = to_json(details)
    tool, rule = details.get("tool"), details.get("rule")
    verdict = details.get("verdict", details.get("outcome"))
    return EventRow(
        event.time,
        event.type,
        event.agent,
        event.server,
        event.correlation_id,
        # `type(...) is str` first: the usual value, without a call (a `str` subclass, an enum, still counts)
        tool if type(tool) is str else _text_or_none(tool),
        verdict if type(verdict) is str else _text_or_none(verdict),
        rule if type(rule) is str or rule is None else _text_or_none(rule),
        data,
    )


def to_json(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is; what JSON cannot hold is stored as its `str`."""
    try:
        return compact_json(value)
    except ValueError:  # a circular reference: record what we can rather than fail the call
        return json.dumps(repr(value), ensure_ascii=False)


def row_bytes(row: EventRow) -> bytes:
    """The canonical bytes of `row` alone (compact JSON of its columns), as a seal covers it."""
    return canonical_json([*row]).encode("utf-8", "surrogatepass")


def link(previous_hash: str, seq: int, row: EventRow) -> str:
    """The hash of the event `row` at `seq`, chained to `previous_hash`:
    SHA-256 of `<previous hash hex>\n<compact JSON of [seq, *row]>` (UTF-8), as hex."""
    canonical = canonical_json([seq, *row])
    return hashlib.sha256(f"{previous_hash}\n{canonical}".encode("utf-8", "surrogatepass")).hexdigest()


def chain_rows(previous: Checkpoint, rows: Iterable[EventRow]) -> list[ChainedRow]:
    """Give `rows` the sequence numbers and hashes that follow `previous` (the current head)."""
    chained: list[ChainedRow] = []
    seq, digest = previous.seq, previous.hash
    for row in rows:
        seq += 1
        digest = link(digest, seq, row)
        chained.append(ChainedRow(seq, row, digest))
    return chained


_new_tuple = tuple.__new__


def chained_row(stored: Sequence[Any]) -> ChainedRow:
    """The `ChainedRow` of a row read from the `events` table (`seq`, the nine `EventRow` columns, `hash`).

    Built with `tuple.__new__`, which is what the named tuples' constructors call, minus a
    Python-level call each: an export builds a million of these.
    """
    return _new_tuple(ChainedRow, (stored[0], _new_tuple(EventRow, stored[1:10]), stored[10]))


def decode_row(chained: ChainedRow) -> StoredEvent:
    """The `StoredEvent` a stored row holds."""
    row = chained.row
    details = json.loads(row.data)
    return StoredEvent(
        seq=chained.seq,
        time=row.time,
        type=row.type,
        agent=row.agent,
        server=row.server,
        correlation_id=row.correlation_id,
        details=details if isinstance(details, dict) else {"value": details},
        hash=chained.hash,
    )


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What `verify_chain` found. `first_bad_seq` is None when the chain is intact."""

    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    last_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify_chain(rows: Iterable[ChainedRow], start: Checkpoint | None, head: Checkpoint | None) -> VerifyReport:
    """Walk `rows` (ascending seq) from `start` (a retention checkpoint, or the genesis).

    A checkpoint counts only when an `audit.pruned` event in the chain attests it, so
    removing old events and forging a checkpoint is caught. `head` is the chain's recorded
    head, written in the same transaction as each append; it catches the removal of the
    newest events, which no chain can catch on its own.
    """
    expected = start if start is not None else Checkpoint(0, GENESIS_HASH)
    attested = start is None
    checked = 0
    for chained in rows:
        seq = expected.seq + 1
        if chained.seq != seq:
            problem = f"expected sequence number {seq}, found {chained.seq}: event(s) missing or reordered"
            return VerifyReport(checked, min(seq, chained.seq) if chained.seq > 0 else seq, problem, expected.seq)
        if link(expected.hash, seq, chained.row) != chained.hash:
            return VerifyReport(checked, seq, "content does not match its hash: edited, or moved from elsewhere", seq)
        expected = Checkpoint(seq, chained.hash)
        checked += 1
        if not attested and chained.row.type == AuditPruned.type:
            attested = _attests(chained.row, start)
    if not attested and start is not None:
        problem = f"the retention checkpoint at {start.seq} is not attested by any audit.pruned event"
        return VerifyReport(checked, start.seq + 1, problem, expected.seq)
    if head is not None and (head.seq, head.hash) != (expected.seq, expected.hash):
        if head.seq > expected.seq:
            problem = f"the log ends at {expected.seq} but its head says {head.seq}: newest event(s) removed"
            return VerifyReport(checked, expected.seq + 1, problem, expected.seq)
        return VerifyReport(checked, head.seq, "the recorded head does not match the chain", expected.seq)
    return VerifyReport(checked, None, "", expected.seq)


def _attests(row: EventRow, checkpoint: Checkpoint | None) -> bool:
    details = json.loads(row.data)
    return (
        checkpoint is not None
        and isinstance(details, dict)
        and (details.get("through_seq"), details.get("through_hash")) == (checkpoint.seq, checkpoint.hash)
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
