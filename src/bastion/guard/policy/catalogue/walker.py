"""Walk nested arguments: every string and scalar value with its path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.guard.policy.catalogue.base import ScalarValue, StringValue

MAX_DEPTH = 64


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
    if isinstance(value, str):
        strings.append(StringValue(path, key, value))
    elif isinstance(value, bool | int | float):
        scalars.append(ScalarValue(path, key, value))
    elif depth < MAX_DEPTH and isinstance(value, Mapping):
        for k, v in value.items():
            walk(v, f"{path}.{k}", str(k), strings, scalars, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, list | tuple):
        for i, v in enumerate(value):
            walk(v, f"{path}[{i}]", key, strings, scalars, depth + 1)
    return strings, scalars
