"""The JSON shape of audit records, shared by every store: arguments in, records out (JSON Lines)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

MAX_ARGUMENTS_BYTES = 64 * 1024
"""Arguments whose JSON (UTF-8) is larger than this are stored truncated, as
`{"_truncated": true, "size": <bytes of the JSON>, "head": <its first ARGUMENTS_HEAD_CHARS characters>}`,
so one huge call cannot bloat the log while the record still shows what it was."""
ARGUMENTS_HEAD_CHARS = 4096


def serialise_arguments(arguments: Any) -> str:
    """Tool-call arguments as compact JSON text, truncated above `MAX_ARGUMENTS_BYTES`."""
    try:
        text = _compact(arguments)
    except ValueError:  # a circular reference: record what we can rather than fail the call
        text = _compact(repr(arguments))
    size = len(text.encode("utf-8"))
    if size <= MAX_ARGUMENTS_BYTES:
        return text
    return _compact({"_truncated": True, "size": size, "head": text[:ARGUMENTS_HEAD_CHARS]})


def iso_time(unix_seconds: float) -> str:
    """A Unix time as ISO 8601 UTC with milliseconds, e.g. `2026-11-25T05:55:05.123Z`."""
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_jsonl(records: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write each record to `out` as one line of compact JSON (UTF-8 text, not escaped).

    Streams: records are consumed one at a time. Returns how many were written.
    """
    count = 0
    for record in records:
        out.write(_compact(record))
        out.write("\n")
        count += 1
    return count


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
