"""The encoders made once give the text `json` gives, byte for byte (the hash chain depends on it)."""

from __future__ import annotations

import datetime
import enum
import json
import math
from dataclasses import dataclass
from typing import Any

import pytest

from bastion.compact_json import canonical_json, compact_json, json_size


class Colour(enum.Enum):
    RED = 1


class Level(str, enum.Enum):  # noqa: UP042 (the str mixin is the case: json writes its value)
    HIGH = "high"


@dataclass
class Point:
    x: int


VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    1e-05,
    0.1 + 0.2,
    1e16,
    math.inf,
    -math.inf,
    "plain",
    'ünïcödé ✓ \u2028 \x00 "quoted" \\ \n',
    "\ud800 lone surrogate",
    [],
    {},
    {"nested": [1, {"deeper": [None, 2.5, "x"]}], "": ""},
    {1: "int key", None: "null key", 2.5: "float key", False: "bool key"},
    ("a", "tuple"),
    Level.HIGH,
    {"when": datetime.datetime(2026, 12, 6, 17, 0, tzinfo=datetime.UTC)},
    {"enum": Colour.RED, "object": Point(1), "set": {1}},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_compact_json_is_json_dumps(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    assert compact_json(value) == expected


@pytest.mark.parametrize("value", [v for v in VALUES if type(v) in (type(None), bool, int, float, str, list)])
def test_canonical_json_is_the_chains_encoder(value: Any) -> None:
    expected = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode(value)
    assert canonical_json(value) == expected
    assert canonical_json([7, 1.5, "t", None, value]) == expected.join(['[7,1.5,"t",null,', "]"])


def test_canonical_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="Point"):
        canonical_json([1, Point(1)])


def test_a_circular_value_is_a_value_error_and_the_encoder_still_works() -> None:
    circular: list[Any] = [1]
    circular.append(circular)
    with pytest.raises(ValueError, match="cannot encode as JSON"):
        compact_json(circular)
    assert compact_json({"after": [1, 2]}) == '{"after":[1,2]}'


@pytest.mark.parametrize(
    "value",
    [
        {"content": [{"type": "text", "text": 'héllo ✓ \u2028 "q" \\\\ \n'}], "isError": False},
        {"rows": [[1, -2, None, True, "x" * 300]] * 50, "nested": {"a": {"b": {"c": []}}}},
        {"wei": 2**70, "id": 12},  # beyond 64 bits: measured as the C encoder writes it
        {1: "int key"},
        "",
    ],
    ids=["unicode", "table", "bigint", "int-key", "empty"],
)
def test_json_size_is_the_bytes_of_the_compact_text(value: Any) -> None:
    assert json_size(value) == len(compact_json(value).encode("utf-8"))


def test_json_size_of_a_lone_surrogate_raises_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):  # the text has no UTF-8 form (a ValueError)
        json_size({"text": "\ud800"})
