"""Export audit events as JSON Lines, one JSON array, or CSV: streamed, in bounded memory.

Every format carries the same record per event: `seq`, `time` (ISO 8601 UTC), `type`,
`agent`, `server`, `correlation_id`, the event's own fields, and `hash`. In CSV each of an
event kind's own fields is a column (`DETAIL_FIELDS`, the union over all kinds, so the
header is known before the first row); nested values (arguments, results) are JSON text.
Cells that a spreadsheet would run as a formula are prefixed with `'`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from bastion.audit.chain import decode_row
from bastion.audit.events import DETAIL_FIELDS, StoredEvent
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader

ExportFormat = Literal["jsonl", "json", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "json", "csv")
CSV_COLUMNS: tuple[str, ...] = ("seq", "time", "type", "agent", "server", "correlation_id", *DETAIL_FIELDS, "hash")
PROGRESS_EVERY = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def iso_time(unix_seconds: float) -> str:
    """A Unix time as ISO 8601 UTC with microseconds, e.g. `2026-11-25T05:55:05.123000Z`."""
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_record(event: StoredEvent) -> dict[str, Any]:
    """One event as a flat JSON-ready dict (the record every format exports)."""
    return {
        "seq": event.seq,
        "time": iso_time(event.time),
        "type": event.type,
        "agent": event.agent,
        "server": event.server,
        "correlation_id": event.correlation_id,
        **event.details,
        "hash": event.hash,
    }


def export_events(
    reader: AuditReader,
    query: EventQuery,
    fmt: ExportFormat,
    out: TextIO,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write every event matching `query`, oldest first, to `out` in `fmt`. Returns the count.

    `on_progress(n)` is called with the number of events written since its last call.
    """
    events = (decode_row(row) for row in reader.rows(query, newest_first=False))
    records = _counting((event_record(event) for event in events), on_progress)
    writer = {"jsonl": write_jsonl, "json": write_json_array, "csv": write_csv}[fmt]
    return writer(records, out)


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Each record as one line of compact JSON (UTF-8 text, not escaped). Returns the count."""
    count = 0
    for record in records:
        out.write(_compact(record))
        out.write("\n")
        count += 1
    return count


def write_json_array(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """The records as one JSON array, one element a line, streamed. Returns the count."""
    count = 0
    out.write("[")
    for record in records:
        out.write(",\n" if count else "\n")
        out.write(_compact(record))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_csv(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """The records as CSV with a header row (`CSV_COLUMNS`), one row an event. Returns the count."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow([csv_cell(record.get(column)) for column in CSV_COLUMNS])
        count += 1
    return count


def csv_cell(value: Any) -> str:
    """A value as spreadsheet-safe CSV text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else _compact(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _counting(records: Iterator[dict[str, Any]], on_progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    if on_progress is None:
        yield from records
        return
    pending = 0
    for record in records:
        yield record
        pending += 1
        if pending == PROGRESS_EVERY:
            on_progress(pending)
            pending = 0
    if pending:
        on_progress(pending)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
