"""JSON for the upstream wire: written with orjson, read with pydantic-core's parser (jiter).

Both are Rust, and both run once per message. Reading is not orjson's: orjson reads an
integer beyond 64 bits as a float, silently rounded (a balance in wei, a 128-bit id), where
the SDK's parser, the reference, keeps it exact; jiter (what the SDK parses with) keeps it
exact too, is as fast on large messages (55 against 113 µs for 100 KB) and about a
microsecond slower on a small one. orjson refuses to write such an integer; the standard
library writes that message instead.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic_core import from_json

__all__ = ["DecodeError", "dumps", "loads"]

DecodeError = ValueError
"""What `loads` raises for bytes that are not one JSON document."""


def loads(data: bytes | str) -> Any:
    """Parse one JSON document, numbers exact. Raises `DecodeError`."""
    return from_json(data, cache_strings=False)


def dumps(value: Any) -> bytes:
    """Serialise one message (compact, UTF-8)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, a non-string key
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
