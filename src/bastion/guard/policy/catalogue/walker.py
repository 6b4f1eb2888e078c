"""Walk nested arguments: every string and scalar value with its path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.guard.policy.catalogue.base import ScalarValue, StringValue

MAX_DEPTH = 64
_SCALARS = (bool, int, float)


def walk(
    value: Any,
    path: str = "arguments",
    key: str = "",
    strings: list[StringValue] | None = None,
    scalars: list[ScalarValue] | None = None,
    depth: int = 0,
) -> tuple[list[StringValue], list[ScalarValue]]:
    """Collect every string and scalar of `value` with its path. Deeper than MAX_DEPTH is not walked."""
    strings = [] if strings is None else strings
    scalars = [] if scalars is None else scalars
    _walk(value, path, key, strings, scalars, depth)
    return strings, scalars


def _walk(value: Any, path: str, key: str, strings: list[StringValue], scalars: list[ScalarValue], depth: int) -> None:
    # Exact JSON types first (what a decoded call holds), the ABCs only for anything else: isinstance against
    # `Mapping` costs a trip through abc for every value.
    t = type(value)
    if t is str:
        strings.append(StringValue(path, key, value))
    elif t in _SCALARS:
        scalars.append(ScalarValue(path, key, value))
    elif t is dict:
        if depth < MAX_DEPTH:
            for k, v in value.items():
                key = k if type(k) is str else str(k)
                tv = type(v)
                if tv is str:  # a leaf, without a call of its own (most values are)
                    strings.append(StringValue(f"{path}.{k}", key, v))
                elif tv in _SCALARS:
                    scalars.append(ScalarValue(f"{path}.{k}", key, v))
                else:
                    _walk(v, f"{path}.{k}", key, strings, scalars, depth + 1)
    elif t is list:
        if depth < MAX_DEPTH:
            for i, v in enumerate(value):
                _walk(v, f"{path}[{i}]", key, strings, scalars, depth + 1)
    elif isinstance(value, str):
        strings.append(StringValue(path, key, value))
    elif isinstance(value, bool | int | float):
        scalars.append(ScalarValue(path, key, value))
    elif depth < MAX_DEPTH and isinstance(value, Mapping):
        for k, v in value.items():
            _walk(v, f"{path}.{k}", str(k), strings, scalars, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _walk(v, f"{path}[{i}]", key, strings, scalars, depth + 1)
