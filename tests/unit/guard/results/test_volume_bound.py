"""A result holds fewer records than its JSON has bytes: what lets `volume_findings` skip counting
records in a result of at most `max_records` bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.guard.results.scan import volume_findings
from bastion.guard.results.volume import result_bytes, result_records

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=40,
)
_LINES = st.lists(st.text(alphabet=",|;\t ab-:", min_size=0, max_size=6), max_size=30)


def _texts(draw: Any) -> str:
    kind = draw(st.sampled_from(["table", "json", "plain"]))
    if kind == "table":
        return "\n".join(draw(_LINES))
    if kind == "json":
        return json.dumps(draw(_JSON), indent=draw(st.sampled_from([None, 0, 1])))
    return draw(st.text(max_size=40))


@st.composite
def _results(draw: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "content": [{"type": "text", "text": _texts(draw)} for _ in range(draw(st.integers(0, 3)))]
    }
    if draw(st.booleans()):
        result["structuredContent"] = draw(_JSON)
    if draw(st.booleans()):
        result["contents"] = [{"uri": "file:///x", "text": _texts(draw)}]
    return result


@settings(max_examples=500, deadline=None)
@given(_results())
def test_a_result_holds_fewer_records_than_bytes(result: dict[str, Any]) -> None:
    assert result_records(result) < max(result_bytes(result), 1)


@settings(max_examples=300, deadline=None)
@given(_results(), st.integers(0, 40))
def test_the_findings_are_those_of_counting_every_record(result: dict[str, Any], max_records: int) -> None:
    counted = result_records(result)
    findings = [f.detector for f in volume_findings(result, max_records, 10**9)]
    assert findings == (["volume.records"] if counted > max_records else [])


def test_a_small_result_of_many_records_is_still_found() -> None:
    rows = "\n".join(f"{i},x" for i in range(12))
    assert [f.detector for f in volume_findings({"content": [{"type": "text", "text": rows}]}, 10, 10**9)] == [
        "volume.records"
    ]


def test_a_dense_array_one_record_over_is_found() -> None:
    # about two bytes a record: a bound any looser than the byte count would skip it
    result = {"content": [], "structuredContent": {"r": [0] * 100}}
    assert [f.detector for f in volume_findings(result, 99, 10**9)] == ["volume.records"]
    assert volume_findings(result, 100, 10**9) == []
