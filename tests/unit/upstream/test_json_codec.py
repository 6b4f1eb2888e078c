"""The upstream wire's JSON: orjson, exact for numbers beyond 64 bits."""

from __future__ import annotations

import json

import pytest

from bastion.upstream.json_codec import DecodeError, dumps, loads

BIG = 2**70 + 1


@pytest.mark.parametrize(
    "value",
    [
        {"id": 1, "result": {"n": BIG}},
        {"id": 1, "result": {"n": -BIG, "text": "é ✓", "f": 1.5}},
        {"id": "x", "result": {"small": 2**63 - 1, "list": [BIG, 1]}},
        {"text": "a digit run in a string: 12345678901234567890123"},
    ],
)
def test_round_trips_exactly(value: object) -> None:
    wire = dumps(value)
    assert loads(wire) == value
    assert loads(wire.decode()) == value
    assert json.loads(wire) == value


def test_bad_json_is_a_decode_error() -> None:
    for bad in (b"{", b"nope", '{"a": 12345678901234567890', b"\xff\xfe"):
        with pytest.raises(DecodeError):
            loads(bad)
