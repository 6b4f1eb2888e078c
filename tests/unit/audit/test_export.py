"""Exports round-trip: every event in, every event out, in each format."""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

import pytest

from bastion.audit.chain import decode_row
from bastion.audit.events import AuthFailed, CallCompleted, CallRequested, TokenCreated
from bastion.audit.export import CSV_COLUMNS, csv_cell, event_record, export_events, iso_time, write_json_array
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditStore

pytestmark = pytest.mark.anyio


async def _varied_log(store: AuditStore) -> list[dict[str, Any]]:
    await store.record(
        CallRequested(agent="a", server="db", correlation_id="c1", method="tools/call", tool="query",
                      arguments={"sql": "=HYPERLINK(\"http://evil\")", "rows": [1, {"x": "日本, \"q\"\n"}]}),
    )  # fmt: skip
    await store.record(
        CallCompleted(agent="a", server="db", correlation_id="c1", method="tools/call", tool="query",
                      outcome="allowed", latency_ms=3.25, is_error=False, result_size=10, result={"ok": True}),
    )  # fmt: skip
    await store.record(AuthFailed(reason="missing bearer token", path="/servers/x/mcp", client="127.0.0.1"))
    await store.record(TokenCreated(agent="a", token_id="0123abcd", servers=("db",), expires_at=None))
    return [event_record(decode_row(row)) for row in store.rows(EventQuery(), newest_first=False)]


async def test_jsonl_round_trips(store: AuditStore) -> None:
    expected = await _varied_log(store)
    out = io.StringIO()

    assert export_events(store, EventQuery(), "jsonl", out) == 4
    assert [json.loads(line) for line in out.getvalue().splitlines()] == json.loads(json.dumps(expected))


async def test_json_is_one_valid_array(store: AuditStore) -> None:
    expected = await _varied_log(store)
    out = io.StringIO()

    export_events(store, EventQuery(), "json", out)

    assert json.loads(out.getvalue()) == json.loads(json.dumps(expected))


def test_empty_json_export_is_an_empty_array() -> None:
    out = io.StringIO()

    assert write_json_array(iter([]), out) == 0
    assert json.loads(out.getvalue()) == []


async def test_csv_has_one_row_per_event_and_every_value(store: AuditStore) -> None:
    expected = await _varied_log(store)
    out = io.StringIO()

    export_events(store, EventQuery(), "csv", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))

    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == len(expected)
    for row, record in zip(rows, expected, strict=True):
        assert row == {column: csv_cell(record.get(column)) for column in CSV_COLUMNS}
    first = rows[0]
    assert first["arguments"].startswith("{")  # nested values are JSON text
    assert json.loads(first["arguments"])["rows"][1] == {"x": '日本, "q"\n'}
    assert first["hash"] == expected[0]["hash"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (3.25, "3.25"),
        (7, "7"),
        ("plain", "plain"),
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ({"a": [1]}, '{"a":[1]}'),
    ],
)
def test_csv_cells_are_spreadsheet_safe(value: Any, cell: str) -> None:
    assert csv_cell(value) == cell


async def test_filters_apply_to_exports(store: AuditStore) -> None:
    await _varied_log(store)
    out = io.StringIO()

    count = export_events(store, EventQuery(types=("auth.failure",)), "jsonl", out)

    assert count == 1
    assert json.loads(out.getvalue())["reason"] == "missing bearer token"


@pytest.mark.parametrize("moment", [0.0, 1_795_586_105.123, 1_795_586_105.9999996, 1_795_586_105.0000004, 86399.5])
def test_iso_time_matches_datetime(moment: float) -> None:
    from datetime import UTC, datetime

    expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    assert iso_time(moment) == expected


def test_iso_time_matches_datetime_on_many_times() -> None:
    import random
    from datetime import UTC, datetime

    rng = random.Random(5)
    for _ in range(20_000):
        moment = rng.uniform(-1e9, 4e9)
        expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        assert iso_time(moment) == expected, moment


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
async def test_export_chunks_join_to_the_export(store: AuditStore, fmt: Any) -> None:
    from bastion.audit.export import CHUNK_EVENTS, export_chunks

    for n in range(CHUNK_EVENTS * 2 + 3):
        await store.record(TokenCreated(agent=f"a{n}", token_id=f"{n:08x}"), durable=False)
    await store.flush()
    out = io.StringIO()
    export_events(store, EventQuery(), fmt, out)

    chunks = list(export_chunks(store, EventQuery(), fmt))

    assert "".join(chunks) == out.getvalue()
    assert len(chunks) >= 3, "streamed in pieces, not built whole"


def test_csv_rows_are_what_the_csv_module_writes() -> None:
    from bastion.audit.chain import ChainedRow, EventRow
    from bastion.audit.export import _csv_chunks

    tricky = ["plain", 'quote " inside', "comma, inside", "line\nbreak", "cr\rhere", "", "=formula", "日本"]
    details = {"method": "m", "tool": "t", "arguments": {"k": tricky}, "error": "a,b", "reason": '"q"'}
    rows = [
        ChainedRow(n, EventRow(1_795_586_105.5, "call.requested", value, value, value, None, None, None,
                               json.dumps({**details, "transport": value})), "h")
        for n, value in enumerate(tricky, start=1)
    ]  # fmt: skip
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        record = event_record(decode_row(row))
        writer.writerow([csv_cell(record.get(column)) for column in CSV_COLUMNS])

    assert "".join(_csv_chunks(rows)) == expected.getvalue()


def test_csv_time_cells_are_iso_time() -> None:
    """The CSV loop formats times itself (inlined for speed): it must agree with `iso_time` everywhere."""
    from bastion.audit.chain import ChainedRow, EventRow
    from bastion.audit.export import _csv_chunks

    rng = random.Random(5)
    moments = [0.0, -0.5, -1.0000004, 86399.9999996, 1_795_586_105.9999996, 1_795_586_105.0000004, 59.9999995]
    moments += [rng.uniform(-1e9, 4e9) for _ in range(3000)]
    moments += [1_795_586_105 + n * 0.37 for n in range(500)]  # many in one minute, then the next
    rows = [
        ChainedRow(n, EventRow(at, "token.created", None, None, None, None, None, None, "{}"), "h")
        for n, at in enumerate(moments, start=1)
    ]

    cells = [line[1] for line in csv.reader(io.StringIO("".join(_csv_chunks(rows))))][1:]

    assert cells == [iso_time(at) for at in moments]


@pytest.mark.parametrize(
    "data",
    ['{"latency_ms":NaN,"tool":"t"}', '{"result_size":1180591620717411303424}', '{"error":"lone \\ud800 half"}',
     '{"arguments":{"x":[1.5e300,-0.0,Infinity]}}', "[1, 2]",
     '{"arguments":{"id":1180591620717411303424,"n":-99999999999999999999,"f":1e20}}', '{"latency_ms":1e20}'],
    ids=["nan", "big-int", "lone-surrogate", "nested-non-finite", "not-an-object", "nested-big-int", "big-float"],
)  # fmt: skip
def test_csv_rows_of_details_orjson_does_not_read_exactly(data: str) -> None:
    """orjson refuses these, or reads big integers as floats: the row is still what `csv` would write."""
    from bastion.audit.chain import ChainedRow, EventRow
    from bastion.audit.export import _csv_chunks

    rows = [ChainedRow(1, EventRow(1_795_586_105.5, "call.completed", "a", "s", "c", None, None, None, data), "h")]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    record = event_record(decode_row(rows[0]))
    writer.writerow([csv_cell(record.get(column)) for column in CSV_COLUMNS])

    assert "".join(_csv_chunks(rows)) == expected.getvalue()
