"""Storing a new record under a short random id, drawing again when the id is taken.

Approvals, agent tokens and admin tokens have 32-bit public ids (short enough to type);
two records may draw the same one. The store's unique key refuses the second, and the
record is made again with a new id, a few times at most.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

ATTEMPTS = 5
T = TypeVar("T")


def insert_with_fresh_id(make: Callable[[], T], insert: Callable[[T], object], id_taken: type[Exception]) -> T:
    """`make()` a record with a fresh id and `insert` it; again while `insert` raises `id_taken`.

    The last `id_taken` propagates after `ATTEMPTS` draws (a sign that something else is wrong).
    """
    for attempt in range(ATTEMPTS):
        record = make()
        try:
            insert(record)
        except id_taken:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        return record
    raise AssertionError("unreachable")
