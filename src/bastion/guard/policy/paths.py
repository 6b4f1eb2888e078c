"""Argument paths: `arguments.sql`, `arguments.steps[2].cmd`, `arguments.items[*].path`, `arguments.**.url`.

A path selects values in a call's nested arguments. `*` (or `[*]`) is any one key or list item,
`**` is any number of levels (zero included). A key step that meets a list applies to each of
its items, so `arguments.files.path` also reaches `{"files": [{"path": ...}, ...]}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 64
"""Nesting deeper than this is not searched (and the catalogue treats such input as suspect)."""

_STEP = re.compile(r"\.(?P<key>[^.\[\]]+)|\[(?P<index>\d+|\*)\]")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a path: a key, a list index, `*` (any one) or `**` (any depth)."""

    kind: str
    """"key", "index", "any" or "deep"."""
    key: str = ""
    index: int = 0


def parse_argument_path(text: str) -> tuple[Step, ...]:
    """The steps of `text`, which starts with `arguments`. Raises ValueError saying what is wrong."""
    if text == "arguments":
        return ()
    if not text.startswith("arguments.") and not text.startswith("arguments["):
        raise ValueError("it must start with `arguments`")
    rest = text[len("arguments") :]
    steps: list[Step] = []
    position = 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None:
            raise ValueError(f"cannot read it from `{rest[position:]}`")
        key, index = match["key"], match["index"]
        if key == "**":
            steps.append(Step("deep"))
        elif key == "*" or index == "*":
            steps.append(Step("any"))
        elif key is not None:
            if "*" in key:
                raise ValueError(f"`{key}`: `*` must be a whole step (write `.*` or `.**`)")
            steps.append(Step("key", key=key))
        else:
            steps.append(Step("index", index=int(index)))
        position = match.end()
    return tuple(steps)


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        yield from value.values()
    elif isinstance(value, list | tuple):
        yield from value


def select(value: Any, steps: tuple[Step, ...], depth: int = 0) -> Iterator[Any]:
    """Every value `steps` reach from `value` (the arguments object)."""
    if depth > MAX_DEPTH:
        return
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if step.kind == "deep":
        yield from select(value, rest, depth + 1)
        for child in _children(value):
            yield from select(child, steps, depth + 1)
    elif step.kind == "any":
        for child in _children(value):
            yield from select(child, rest, depth + 1)
    elif step.kind == "index":
        if isinstance(value, list | tuple) and -len(value) <= step.index < len(value):
            yield from select(value[step.index], rest, depth + 1)
    elif isinstance(value, Mapping):
        if step.key in value:
            yield from select(value[step.key], rest, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from select(item, steps, depth + 1)
