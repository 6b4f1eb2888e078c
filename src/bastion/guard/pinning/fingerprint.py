"""The fingerprint of a tool definition: SHA-256 of a canonical JSON of the parts an agent reads.

Canonical means RFC 8785 (JSON Canonicalization Scheme): keys sorted, no insignificant
whitespace, numbers in one spelling, so key order and `1` vs `1.0` never count as a change,
while any change to a pinned field does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import rfc8785

PINNED_FIELDS: tuple[str, ...] = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
"""The fields of a tool definition that are pinned: what the model reads, and what checks judge by."""


def pinned_part(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The pinned fields of a definition; a field set to null counts as absent."""
    return {key: definition[key] for key in PINNED_FIELDS if definition.get(key) is not None}


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of `value`.

    Integers beyond the JSON-safe range (2**53) and NaN or infinities (which Python's JSON
    parser accepts) have no RFC 8785 form; such a value falls back to sorted-key JSON,
    marked so the two encodings can never produce the same bytes.
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return b"\x00json:" + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(definition: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical pinned part of a tool definition."""
    return "sha256:" + hashlib.sha256(canonical_json(pinned_part(definition))).hexdigest()


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """The pinned fields that differ between two definitions (all present ones when `before` is None)."""
    old = pinned_part(before or {})
    new = pinned_part(after)
    return [
        key
        for key in PINNED_FIELDS
        if (key in old) != (key in new) or (key in new and canonical_json(old[key]) != canonical_json(new[key]))
    ]
