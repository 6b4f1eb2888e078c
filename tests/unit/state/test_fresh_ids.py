"""Short random ids: a taken id is drawn again, a few times at most."""

from __future__ import annotations

import pytest

from bastion.state.fresh_ids import ATTEMPTS, insert_with_fresh_id


class Taken(Exception):
    pass


def test_a_taken_id_is_drawn_again_until_one_is_free() -> None:
    stored = {"a"}
    drawn = iter(["a", "a", "b"])

    def insert(record: str) -> None:
        if record in stored:
            raise Taken(record)
        stored.add(record)

    assert insert_with_fresh_id(lambda: next(drawn), insert, Taken) == "b"
    assert stored == {"a", "b"}


def test_after_every_attempt_the_last_refusal_propagates_and_other_errors_at_once() -> None:
    tries: list[int] = []

    def always_taken(_record: int) -> None:
        tries.append(1)
        raise Taken("taken")

    with pytest.raises(Taken):
        insert_with_fresh_id(lambda: 1, always_taken, Taken)
    assert len(tries) == ATTEMPTS

    def broken(_record: int) -> None:
        tries.append(1)
        raise OSError("disk")

    tries.clear()
    with pytest.raises(OSError, match="disk"):
        insert_with_fresh_id(lambda: 1, broken, Taken)
    assert len(tries) == 1
