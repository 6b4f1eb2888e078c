"""When a check's work on a call is large enough to run on a worker thread, not the event loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio.to_thread

from bastion.json_scalars import JSON_SCALARS

T = TypeVar("T")

OFF_LOOP_BYTES = 32 * 1024
"""Arguments or results with more text than this are judged on a worker thread: reading them takes
milliseconds, during which the event loop would serve no other agent."""


def text_size(value: Any, limit: int = OFF_LOOP_BYTES + 1) -> int:
    """Characters of text in `value` (nested): the exact count when it is at most `limit`, else some
    count above `limit` (the walk stops there)."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        kind = type(item)
        # Exact JSON types first (what a decoded call or result holds): `isinstance` against
        # `Mapping` is a trip through abc for every value.
        if kind is dict:
            total += len(item)
            for each in item.values():  # a map's strings counted here, not pushed and popped
                if type(each) is str:
                    total += len(each)
                    if total > limit:
                        return total
                elif type(each) not in JSON_SCALARS:
                    stack.append(each)
        elif kind is str:
            total += len(item)
        elif kind is list:
            stack.extend(item)
        elif kind in JSON_SCALARS:
            continue
        elif isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
            total += len(item)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


async def run_sized(value: Any, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`: on a worker thread when `value` (what it reads) holds more than `OFF_LOOP_BYTES`
    of text, else here, at once (a thread hop costs more than reading a small value)."""
    if text_size(value) > OFF_LOOP_BYTES:
        return await anyio.to_thread.run_sync(work, *args)
    return work(*args)
