"""Export audit events as JSON Lines, one JSON array, or CSV: streamed, in bounded memory.

Every format carries the same record per event: `seq`, `time` (ISO 8601 UTC), `type`,
`agent`, `server`, `correlation_id`, the event's own fields, and `hash`. In CSV each of an
event kind's own fields is a column (`DETAIL_FIELDS`, the union over all kinds, so the
header is known before the first row); nested values (arguments, results) are JSON text.
Cells that a spreadsheet would run as a formula are prefixed with `'`.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, TextIO

from bastion.audit.chain import ChainedRow, decode_row
from bastion.audit.events import DETAIL_FIELDS, StoredEvent
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader

ExportFormat = Literal["jsonl", "json", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "json", "csv")
CSV_COLUMNS: tuple[str, ...] = ("seq", "time", "type", "agent", "server", "correlation_id", *DETAIL_FIELDS, "hash")
PROGRESS_EVERY = 1000
CHUNK_EVENTS = 500
_FORMULA_FIRST = frozenset("=+-@\t\r")
"""A cell starting with one of these would be run as a formula by a spreadsheet: it gets a leading `'`."""
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def iso_time(unix_seconds: float) -> str:
    """A Unix time as ISO 8601 UTC with microseconds, e.g. `2026-11-25T05:55:05.123000Z`."""
    fraction, whole = math.modf(unix_seconds)
    micro = round(fraction * 1e6)  # as datetime.fromtimestamp rounds (half to even)
    second = int(whole)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    return f"{_second_prefix(second)}.{micro:06d}Z"


@functools.lru_cache(maxsize=64)
def _second_prefix(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


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

    Streams (memory stays flat however large the log). `on_progress(n)` is called with the
    number of events written since its last call.
    """
    count = 0

    def progress(done: int) -> None:
        nonlocal count
        count += done
        if on_progress is not None:
            on_progress(done)

    for chunk in export_chunks(reader, query, fmt, on_progress=progress):
        out.write(chunk)
    return count


def export_chunks(
    reader: AuditReader, query: EventQuery, fmt: ExportFormat, *, on_progress: Callable[[int], None] | None = None
) -> Iterator[str]:
    """The export of `export_events` as text chunks of up to `CHUNK_EVENTS` events each,
    for a streaming response (the admin API); reading happens as chunks are consumed."""
    rows = _counting(reader.rows(query, newest_first=False), on_progress)
    if fmt == "csv":
        yield from _csv_chunks(rows)
        return
    lines = (_json_line(row) for row in rows)
    if fmt == "jsonl":
        for batch in _batched(lines):
            yield "\n".join(batch) + "\n"
        return
    yield "["
    separator = "\n"
    for batch in _batched(lines):
        yield separator + ",\n".join(batch)
        separator = ",\n"
    yield "]\n" if separator == "\n" else "\n]\n"


def _batched(items: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK_EVENTS:
            yield batch
            batch = []
    if batch:
        yield batch


def _json_line(chained: ChainedRow) -> str:
    """`_compact(event_record(decode_row(chained)))`, without parsing the stored details again."""
    row = chained.row
    head = (
        f'{{"seq":{chained.seq},"time":"{iso_time(row.time)}","type":{_string(row.type)},'
        f'"agent":{_string(row.agent)},"server":{_string(row.server)},"correlation_id":{_string(row.correlation_id)}'
    )
    details = row.data.strip()
    if not (details.startswith("{") and details.endswith("}")):  # never written so; decode to be safe
        return _compact(event_record(decode_row(chained)))
    inner = details[1:-1]
    return f'{head}{"," if inner else ""}{inner},"hash":"{chained.hash}"}}'


def _string(value: str | None) -> str:
    return "null" if value is None else _encode_string(value)


_CSV_INDEX = {column: index for index, column in enumerate(CSV_COLUMNS)}


def _csv_chunks(rows: Iterable[ChainedRow]) -> Iterator[str]:
    """CSV text as `csv.writer` (minimal quoting, CRLF) would write it, built directly: most of a
    row's many columns are empty, and joining them is several times faster than `writerow`."""
    lines = [",".join(_csv_quote(column) for column in CSV_COLUMNS)]
    blank = [""] * len(CSV_COLUMNS)
    hash_at = _CSV_INDEX["hash"]
    detail_index = {key: index for key, index in _CSV_INDEX.items() if index > 5 and key != "hash"}
    for count, (seq, row, digest) in enumerate(rows, start=1):
        cells = blank.copy()
        cells[0] = str(seq)
        cells[1] = iso_time(row.time)
        cells[2] = _csv_field(row.type)
        cells[3] = _csv_field(row.agent)
        cells[4] = _csv_field(row.server)
        cells[5] = _csv_field(row.correlation_id)
        details = _parse_object(row.data)
        for key, value in details.items():
            index = detail_index.get(key)
            if index is not None and value is not None:
                cells[index] = _csv_field(value)
        cells[hash_at] = digest
        lines.append(",".join(cells))
        if count % CHUNK_EVENTS == 0:
            lines.append("")
            yield "\r\n".join(lines)
            lines = []
    lines.append("")
    yield "\r\n".join(lines)


def _parse_object(text: str) -> dict[str, Any]:
    try:
        value, _ = _scan_once(text, 0)  # json.loads without its Python-level wrappers
    except StopIteration:
        value = json.loads(text)  # raises the usual, clear error
    return value if type(value) is dict else {}


_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _csv_field(value: Any) -> str:
    """`csv_cell(value)`, quoted for CSV where needed."""
    return _csv_quote(value if type(value) is str and value[:1] not in _FORMULA_FIRST else csv_cell(value))


def _csv_quote(cell: str) -> str:
    if '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    if "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell + '"'
    return cell


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


def csv_cell(value: Any) -> str:
    """A value as spreadsheet-safe CSV text."""
    kind = type(value)
    if kind is str:
        text: str = value
        return "'" + text if text[:1] in _FORMULA_FIRST else text
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    text = value if isinstance(value, str) else _compact(value)
    return "'" + text if text[:1] in _FORMULA_FIRST else text


def _counting(rows: Iterator[ChainedRow], on_progress: Callable[[int], None] | None) -> Iterator[ChainedRow]:
    if on_progress is None:
        yield from rows
        return
    pending = 0
    for row in rows:
        yield row
        pending += 1
        if pending == PROGRESS_EVERY:
            on_progress(pending)
            pending = 0
    if pending:
        on_progress(pending)


_compact: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
