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
        return b"\x00json:" + _fast_json(value)


def _fast_json(value: Any) -> bytes:
    """Sorted-key JSON, C speed; ASCII-escaped so lone surrogates encode too."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


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


class FingerprintMemo:
    """`fingerprint` with memory, for the hot path.

    The gateway hands the same parsed definition to every call until it fetches the tool
    list again: those are found by identity (entries hold the object, so its id cannot be
    reused while it is here). A fresh `tools/list` result holds new objects with, mostly,
    the same content: those are found by a SHA-256 of their sorted-key JSON, which costs a
    tenth of canonicalising them (the same content always has the same fingerprint).
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._by_object: dict[int, tuple[Mapping[str, Any], str]] = {}
        self._by_content: dict[bytes, str] = {}

    def __call__(self, definition: Mapping[str, Any]) -> str:
        entry = self._by_object.get(id(definition))
        if entry is not None and entry[0] is definition:
            return entry[1]
        part = pinned_part(definition)
        try:
            key = hashlib.sha256(_fast_json(part)).digest()
        except (TypeError, ValueError):
            key = None
        digest = self._by_content.get(key) if key is not None else None
        if digest is None:
            digest = "sha256:" + hashlib.sha256(canonical_json(part)).hexdigest()
            if key is not None:
                self._remember(self._by_content, key, digest)
        self._remember(self._by_object, id(definition), (definition, digest))
        return digest

    def _remember(self, memo: dict[Any, Any], key: Any, value: Any) -> None:
        if len(memo) >= self._size:
            memo.clear()
        memo[key] = value
