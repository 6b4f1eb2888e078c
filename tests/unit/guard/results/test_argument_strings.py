"""The strings the provenance and requested-action checks read in a call's arguments: the walk by exact type
finds what the walk by `isinstance` found, in the same order, for JSON values and for anything else."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bastion.guard.results.values import _argument_strings


def _by_abc(value: object) -> Iterator[str]:
    """`_argument_strings` as it was written before its exact-type fast path."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool):
        return
    elif isinstance(value, int) and abs(value) >= 10_000_000:
        yield str(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _by_abc(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _by_abc(item)


class _Text(str):
    pass


class _Code(enum.IntEnum):
    SMALL = 7
    ACCOUNT = 123_456_789


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**7, max_value=10**12)
    | st.floats(allow_nan=False) | st.text(max_size=20) | st.text(max_size=8).map(_Text)
    | st.sampled_from(_Code) | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(MappingProxyType),
    max_leaves=25,
)  # fmt: skip


@given(_VALUES)
def test_the_exact_type_walk_finds_what_the_abc_walk_found(value: Any) -> None:
    assert _argument_strings(value) == list(_by_abc(value))


def test_long_numbers_are_read_as_text_and_booleans_never() -> None:
    arguments = {"iban": "DE89 3704", "account": 123_456_789, "small": 42, "flag": True, "nested": [{"n": -98_765_432}]}
    assert _argument_strings(arguments) == ["DE89 3704", "123456789", "-98765432"]
