"""How much a result carries: records (rows of a table, items of a JSON array) and bytes.

Records are counted where an agent would see them: the longest JSON array anywhere in the
structured content or in a text part that is JSON, or the rows of a text part that is a
table (CSV, TSV, a markdown or pipe table: lines with the same number of separators).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bastion.compact_json import json_size

_MAX_DEPTH = 6
_SEPARATORS = (",", "\t", "|", ";")


def result_bytes(result: Any) -> int:
    """Bytes of `result` as compact UTF-8 JSON."""
    return json_size(result)


def result_records(result: Mapping[str, Any]) -> int:
    """The most records any part of `result` holds."""
    best = _longest_array(result.get("structuredContent"), 0)
    for part in _text_parts(result):
        best = max(best, _records_in_text(part))
    return best


def _text_parts(result: Mapping[str, Any]) -> list[str]:
    parts: list[str] = []
    for key in ("content", "contents"):
        items = result.get(key)
        for item in items if isinstance(items, list) else ():
            if type(item) is not dict and not isinstance(item, Mapping):  # a dict without a trip through abc
                continue
            text = item.get("text")
            resource = item.get("resource")
            if resource is not None and isinstance(resource, Mapping):
                text = resource.get("text")
            if type(text) is str or isinstance(text, str):
                parts.append(text)
    return parts


def _records_in_text(text: str) -> int:
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        try:
            return _longest_array(json.loads(text), 0)
        except ValueError:
            pass
    return _table_rows(text)


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Types that hold no array: 0 without an `isinstance` check against `Mapping` (an ABC, slow)."""


def _longest_array(value: Any, depth: int) -> int:
    kind = type(value)
    if kind in _SCALARS or depth > _MAX_DEPTH:
        return 0
    if kind is list or isinstance(value, list):
        inner = max((_longest_array(item, depth + 1) for item in value[:1000] if type(item) not in _SCALARS), default=0)
        return max(len(value), inner)
    if kind is dict or isinstance(value, Mapping):
        return max(
            (_longest_array(item, depth + 1) for item in value.values() if type(item) not in _SCALARS), default=0
        )
    return 0


def _table_rows(text: str) -> int:
    """Rows of a table-like text (after its header): most lines share one separator count."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3:
        return 0
    sample = lines[:50]
    for separator in _SEPARATORS:
        counts = [line.count(separator) for line in sample]
        common = max(set(counts), key=counts.count)
        if common >= 1 and counts.count(common) >= 0.8 * len(sample):
            rows = sum(1 for line in lines if line.count(separator) == common)
            markdown_rule = sum(1 for line in lines[:3] if set(line.strip()) <= set("|-: "))
            return max(rows - 1 - markdown_rule, 0)
    return 0
