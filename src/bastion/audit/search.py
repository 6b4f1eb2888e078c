"""Search and verification over any audit store: the functions the CLI, admin API and dashboard share."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.audit.anchor import AuditAnchor
from bastion.audit.anchor_check import check_anchor
from bastion.audit.chain import VerifyReport, decode_row, verify_chain
from bastion.audit.events import StoredEvent
from bastion.audit.head import SignedHead
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results, newest first. Pass `next_cursor` back for the next (older) page."""

    events: list[StoredEvent]
    next_cursor: str | None


def search(
    reader: AuditReader, query: EventQuery, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> SearchPage:
    """Events matching `query`, newest first, one page of at most `limit`.

    Raises `ValueError` for a malformed cursor or a limit out of 1..`MAX_PAGE_SIZE`.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
    before = parse_cursor(cursor) if cursor is not None else None
    rows = list(reader.rows(query, newest_first=True, cursor=before, limit=limit + 1))
    events = [decode_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return SearchPage(events, str(events[-1].seq) if more and events else None)


def parse_cursor(cursor: str) -> int:
    """The sequence number a cursor stands for."""
    if not cursor.isdigit() or int(cursor) < 1:
        raise ValueError(f"{cursor!r} is not a cursor from a previous page")
    return int(cursor)


def verify_log(
    reader: AuditReader, anchor: AuditAnchor | None = None, expect: SignedHead | None = None
) -> VerifyReport:
    """Walk the whole chain of `reader`'s log, from its retention checkpoint to its head; then,
    with `anchor`, check its head is signed and it contains the head file's head, and with
    `expect`, that it contains that head (`anchor_check.py`).

    Raises `AuditStoreError` if the log, or the anchor's key, cannot be read."""
    start, head = reader.chain_ends()
    report = verify_chain(reader.rows(EventQuery(), newest_first=False), start, head)
    if not report.ok or (anchor is None and expect is None):
        return report
    found = check_anchor(reader, start, anchor, expect)
    if found is None:
        return report
    return VerifyReport(report.checked, found.seq, found.problem, report.last_seq)
