"""The text an agent reads in a result, wherever the result's shape puts it.

Tool results (`content[].text`, embedded resources, `structuredContent`), resource contents
(`contents[].text`), prompt messages and sampling requests are all JSON; every string in them
is read, but for the keys that only say what shape a part has (`type`, `mimeType`, ...) and
binary `blob`s. `map_strings` rebuilds a result with some strings replaced (sanitizing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bastion.json_scalars import JSON_SCALARS

STRUCTURAL_KEYS = frozenset({"type", "mimeType", "role", "resultType", "blob", "annotations", "isError"})
"""Keys whose values describe the shape, not the content (and `blob`: base64 of binary data)."""

MAX_STRINGS = 20000
"""Strings read per result at most; a result with more is judged on its first part (and flagged as oversize)."""


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) for every content string of a JSON value, keys of maps included."""
    found: list[tuple[str, str]] = []
    _walk(value, path, [MAX_STRINGS], found)
    return iter(found)


def _walk(value: Any, path: str, budget: list[int], found: list[tuple[str, str]]) -> None:
    # Collected into a list rather than yielded: a generator per level of nesting costs more
    # than the strings of a usual result take to judge.
    if budget[0] <= 0:
        return
    kind = type(value)
    if kind is str or (kind not in JSON_SCALARS and kind is not dict and isinstance(value, str)):
        budget[0] -= 1
        found.append((path, value))
    elif kind is dict or (kind not in JSON_SCALARS and isinstance(value, Mapping)):
        for key, item in value.items():
            if key in STRUCTURAL_KEYS:
                continue
            long_key = (type(key) is str or isinstance(key, str)) and len(key) > 20
            if type(item) in JSON_SCALARS and not long_key:
                continue  # nothing to read, and nothing `_walk` would do
            where = f"{path}.{key}" if path else str(key)
            if long_key:
                budget[0] -= 1
                found.append((f"{where}(key)", key))
            if type(item) is str and budget[0] > 0:  # `_walk(item, ...)` of a string, inline
                budget[0] -= 1
                found.append((where, item))
            else:
                _walk(item, where, budget, found)
    elif kind is list or kind is tuple or (kind not in JSON_SCALARS and isinstance(value, list | tuple)):
        for index, item in enumerate(value):
            if type(item) is str and budget[0] > 0:  # `_walk(item, ...)` of a string, inline
                budget[0] -= 1
                found.append((f"{path}[{index}]", item))
            elif type(item) not in JSON_SCALARS:
                _walk(item, f"{path}[{index}]", budget, found)


def map_strings(value: Any, replace: Callable[[str, str], str], path: str = "") -> Any:
    """`value` with each content string `s` at `path` replaced by `replace(path, s)`."""
    if isinstance(value, str):
        return replace(path, value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in STRUCTURAL_KEYS:
                out[key] = item
                continue
            out[key] = map_strings(item, replace, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(value, list | tuple):
        return [map_strings(item, replace, f"{path}[{index}]") for index, item in enumerate(value)]
    return value
