"""Export audit events as JSON Lines, one JSON array, or CSV: streamed, in bounded memory.

Every format carries the same record per event: `seq`, `time` (ISO 8601 UTC), `type`,
`agent`, `server`, `correlation_id`, the event's own fields, and `hash`. In CSV each of an
event kind's own fields is a column (`DETAIL_FIELDS`, the union over all kinds, so the
header is known before the first row); nested values (arguments, results) are JSON text.
Cells that a spreadsheet would run as a formula are prefixed with `'`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, TextIO

import orjson

from bastion.audit.chain import ChainedRow, decode_row
from bastion.audit.events import DETAIL_FIELDS, StoredEvent
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader
from bastion.compact_json import compact_json

ExportFormat = Literal["jsonl", "json", "csv"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("jsonl", "json", "csv")
CSV_COLUMNS: tuple[str, ...] = ("seq", "time", "type", "agent", "server", "correlation_id", *DETAIL_FIELDS, "hash")
CHUNK_EVENTS = 500
_FORMULA_FIRST = frozenset("=+-@\t\r")
"""A cell starting with one of these would be run as a formula by a spreadsheet: it gets a leading `'`."""
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def iso_time(unix_seconds: float) -> str:
    """A Unix time as ISO 8601 UTC with microseconds, e.g. `2026-11-25T05:55:05.123000Z`."""
    global _last_minute
    fraction, whole = math.modf(unix_seconds)
    micro = round(fraction * 1e6)  # as datetime.fromtimestamp rounds (half to even)
    second = int(whole)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    minute = second // 60
    known, prefix = _last_minute  # one read: another thread may replace it meanwhile
    if minute != known:
        prefix = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
        _last_minute = (minute, prefix)
    return f"{prefix}{second - minute * 60:02d}.{micro:06d}Z"


_last_minute: tuple[int, str] = (0, "1970-01-01T00:00:")
"""The minute `iso_time` formatted last: a log is in time order, so most events share their neighbour's."""


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
    rows = reader.rows(query, newest_first=False)
    if fmt == "csv":
        yield from _csv_chunks(rows, on_progress)
        return
    lines = (_json_line(row) for row in rows)
    if fmt == "jsonl":
        for batch in _batched(lines, on_progress):
            yield "\n".join(batch) + "\n"
        return
    yield "["
    separator = "\n"
    for batch in _batched(lines, on_progress):
        yield separator + ",\n".join(batch)
        separator = ",\n"
    yield "]\n" if separator == "\n" else "\n]\n"


def _batched(items: Iterable[str], on_progress: Callable[[int], None] | None) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK_EVENTS:
            if on_progress is not None:
                on_progress(CHUNK_EVENTS)
            yield batch
            batch = []
    if batch:
        if on_progress is not None:
            on_progress(len(batch))
        yield batch


def _json_line(chained: ChainedRow) -> str:
    """`compact_json(event_record(decode_row(chained)))`, without parsing the stored details again."""
    row = chained.row
    head = (
        f'{{"seq":{chained.seq},"time":"{iso_time(row.time)}","type":{_string(row.type)},'
        f'"agent":{_string(row.agent)},"server":{_string(row.server)},"correlation_id":{_string(row.correlation_id)}'
    )
    details = row.data.strip()
    if not (details.startswith("{") and details.endswith("}")):  # never written so; decode to be safe
        return compact_json(event_record(decode_row(chained)))
    inner = details[1:-1]
    return f'{head}{"," if inner else ""}{inner},"hash":"{chained.hash}"}}'


def _string(value: str | None) -> str:
    return "null" if value is None else _encode_string(value)


_CSV_INDEX = {column: index for index, column in enumerate(CSV_COLUMNS)}
_CELL_CACHE = 4096
_DETAIL_INDEX = {key: index for key, index in _CSV_INDEX.items() if index > 5 and key != "hash"}
_NEEDS_CARE = re.compile('^[=+\\-@\t\r]|[",\r\n]').search
"""Finds what makes a text cell other than itself: a formula's first character, or a character CSV must quote."""


def _csv_chunks(rows: Iterable[ChainedRow], on_progress: Callable[[int], None] | None = None) -> Iterator[str]:
    """CSV text as `csv.writer` (minimal quoting, CRLF) would write it, built directly: most of a
    row's many columns are empty, and joining them is several times faster than `writerow`.

    This loop is the export's hot path (a million rows in seconds). Text cells that need no
    care are taken as they are after one regular-expression search; the cells of repeated
    texts (types, agents, servers, tools, verdicts) are remembered, up to `_CELL_CACHE` of them.
    """
    lines = [",".join(_csv_quote(column) for column in CSV_COLUMNS)]
    blank = [""] * len(CSV_COLUMNS)
    hash_at = _CSV_INDEX["hash"]
    index_of = _DETAIL_INDEX.get
    care = _NEEDS_CARE
    field = _csv_field
    parse = orjson.loads
    known: dict[str, str] = {}
    known_cell = known.get

    def text_cell(text: str) -> str:
        cell = text if care(text) is None else field(text)
        if len(known) < _CELL_CACHE:
            known[text] = cell
        return cell

    def fill(cells: list[str], details: Any) -> bool:
        """Put `details`' values in their columns; True if a number came out with an exponent."""
        exponent = False
        if type(details) is dict:
            for key, value in details.items():
                index = index_of(key)
                if index is None or value is None:
                    continue
                if type(value) is str:
                    cells[index] = known_cell(value) or text_cell(value)
                else:
                    cell = cells[index] = field(value)
                    exponent = exponent or "e+" in cell
        return exponent

    modf = math.modf
    last_minute, minute_prefix = None, ""
    count = 0
    for seq, row, digest in rows:
        at, kind, agent, server, correlation_id, _, _, _, data = row
        cells = blank.copy()
        cells[0] = str(seq)
        # iso_time(at), inlined: a call per row is a tenth of the loop's time
        fraction, whole = modf(at)
        micro = round(fraction * 1e6)
        second = int(whole)
        if not 0 <= micro < 1_000_000:
            second, micro = (second + 1, micro - 1_000_000) if micro > 0 else (second - 1, micro + 1_000_000)
        minute = second // 60
        if minute != last_minute:
            last_minute, minute_prefix = minute, time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
        cells[1] = f"{minute_prefix}{second - minute * 60:02d}.{micro:06d}Z"
        cells[2] = known_cell(kind) or text_cell(kind)
        if agent is not None:
            cells[3] = known_cell(agent) or text_cell(agent)
        if server is not None:
            cells[4] = known_cell(server) or text_cell(server)
        if correlation_id is not None:
            cells[5] = correlation_id if care(correlation_id) is None else field(correlation_id)
        try:
            details, exact = parse(data), False
        except orjson.JSONDecodeError:  # NaN, Infinity, lone surrogates: the standard parser's
            details, exact = _parse_object(data), True
        if fill(cells, details) and not exact:
            # A number printed with an exponent: it may be an integer past 64 bits, which orjson
            # reads as a float. Rare (only numbers of 16 digits or more); the standard parser is exact.
            fill(cells, _parse_object(data))
        cells[hash_at] = digest
        lines.append(",".join(cells))
        count += 1
        if count == CHUNK_EVENTS:
            if on_progress is not None:
                on_progress(count)
            count = 0
            lines.append("")
            yield "\r\n".join(lines)
            lines = []
    if on_progress is not None and count:
        on_progress(count)
    lines.append("")
    yield "\r\n".join(lines)


def _parse_object(text: str) -> dict[str, Any]:
    value = json.loads(text)  # raises the usual, clear error
    return value if type(value) is dict else {}


def _csv_field(value: Any) -> str:
    """`csv_cell(value)`, quoted for CSV where needed. `value` comes from parsed JSON (no cycles)."""
    kind = type(value)
    if kind is dict or kind is list:
        text = compact_json(value)
        return _csv_quote("'" + text if text[:1] in _FORMULA_FIRST else text)
    return _csv_quote(csv_cell(value))


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
        out.write(compact_json(record))
        out.write("\n")
        count += 1
    return count


def write_json_array(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """The records as one JSON array, one element a line, streamed. Returns the count."""
    count = 0
    out.write("[")
    for record in records:
        out.write(",\n" if count else "\n")
        out.write(compact_json(record))
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
    text = value if isinstance(value, str) else compact_json(value)
    return "'" + text if text[:1] in _FORMULA_FIRST else text
