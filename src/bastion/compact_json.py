"""Compact JSON text, as the audit log stores, sizes, chains and exports values.

Both encoders are CPython's C encoder, made once: `json.dumps` and `JSONEncoder.encode` build
one on every call, which costs more than encoding a small event. Neither keeps a set of the
containers it is inside (`check_circular`): values parsed from JSON are never circular, and a
circular one recurses to the interpreter's limit, which `compact_json` reports as ValueError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)


def _encoder(default: Callable[[Any], Any]) -> Callable[[Any], str]:
    """Compact JSON (`separators=(",", ":")`, non-ASCII kept), `default` for other types."""
    if _make_encoder is None:  # pragma: no cover - CPython has the C encoder
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default, check_circular=False).encode
    encode = _make_encoder(None, default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


_compact = _encoder(str)


def compact_json(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)`, the same text.
    Raises ValueError on a circular reference (or nesting deeper than the interpreter's limit)."""
    try:
        return _compact(value)
    except RecursionError as exc:
        raise ValueError(f"cannot encode as JSON: {exc}") from None


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


canonical_json: Callable[[Any], str] = _encoder(_refuse)
"""The hash chain's and the seals' text of a row's columns (strings, numbers, null): as
`compact_json`, but a value of any other type raises TypeError rather than becoming its `str`."""


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON, as orjson writes it (ten times faster than the C
    encoder on a large result; numbers may be written a few characters apart); what orjson cannot
    write (an integer beyond 64 bits, a lone surrogate, another type) is measured as
    `compact_json` writes it, raising as it raises."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        text = compact_json(value)
        return len(text) if text.isascii() else len(text.encode())
