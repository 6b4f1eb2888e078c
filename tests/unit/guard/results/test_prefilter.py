"""An RE2 prefilter skips a pattern only where it cannot match (`bastion.guard.results.prefilter`).

Each superset must match every text its Python pattern matches: held on matches generated from
the pattern itself (a superset that leaves out a way the pattern matches fails), inside long
texts compared match for match with the pattern searched alone, and on the classes a superset
widens Python's to (`\\w` to letters, numbers and `_`; `\\d` to decimal digits) over every code point.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys

import pytest
import re2  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bastion.guard.results
from bastion.guard.results import encoded
from bastion.guard.results.prefilter import Prefiltered, _compiled
from bastion.guard.screened import LONG, fold


def _prefiltered() -> dict[str, Prefiltered]:
    found: dict[str, Prefiltered] = {}
    for info in pkgutil.walk_packages(bastion.guard.results.__path__, "bastion.guard.results."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, Prefiltered):
                found.setdefault(f"{info.name}.{name}", value)
    return found


PATTERNS = _prefiltered()
NAMES = sorted(PATTERNS)


def _superset_finds(pattern: Prefiltered, text: str) -> bool:
    if pattern.folds:
        return _compiled(pattern.superset, False).search(fold(text)) is not None
    return _compiled(pattern.superset, True).search(text) is not None


def test_the_value_and_date_patterns_are_prefiltered() -> None:
    names = {name.rsplit(".", 1)[1] for name in PATTERNS}
    assert {"_DOMAIN", "_IBAN", "_ACCOUNT", "_PHONE", "_PATH", "_TOKEN", "_IDENTIFIER", "_NAME"} <= names
    assert {"_ISO", "_NUMERIC", "_AMOUNT", "_BASE64", "_HEX", "_PERCENT"} <= names


def _every_char(test: re.Pattern[str]) -> str:
    return "".join(
        chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code < 0xE000 and test.fullmatch(chr(code))
    )


def test_the_widened_classes_hold_what_pythons_classes_match() -> None:
    words = _every_char(re.compile(r"\w"))
    assert re2.fullmatch(r"[\pL\pN_]*", words) is not None
    assert re2.fullmatch(r"[\pL\pN_]*", fold(words)) is not None  # as a case-insensitive superset reads them
    digits = _every_char(re.compile(r"\d"))
    assert re2.fullmatch(r"\p{Nd}*", digits) is not None
    spaces = _every_char(re.compile(r"\s"))
    assert re2.fullmatch(r"[\t-\r\x{1c}-\x{20}\x{85}\pZ]*", spaces) is not None


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_a_superset_matches_every_match_of_its_pattern(name: str, data: st.DataObject) -> None:
    pattern = PATTERNS[name]
    text = data.draw(st.from_regex(pattern.pattern, fullmatch=True))
    assert _superset_finds(pattern, text), (name, text)


def _spans(matches: object) -> list[tuple[tuple[int, int], str]]:
    return [(m.span(), m[0]) for m in matches]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_a_prefiltered_pattern_finds_what_it_finds_alone_in_a_long_text(name: str, data: st.DataObject) -> None:
    pattern = PATTERNS[name]
    pieces = st.lists(
        st.one_of(
            st.from_regex(pattern.pattern, fullmatch=True),
            st.text(max_size=6),
            st.sampled_from([" ", ".", "-", "/", "_", "@", "\n", "\u017f", "\u0131", "\u0661", "A", "a", "1"]),
        ),
        max_size=6,
    ).map("".join)
    text = data.draw(st.tuples(pieces, pieces).map(lambda p: p[0] + " word" * (LONG // 5 + 1) + " " + p[1]))
    assert len(text) >= LONG
    assert _spans(pattern.finditer(text)) == _spans(pattern.pattern.finditer(text)), text


def test_a_long_text_without_a_candidate_is_not_searched_and_a_short_one_always_is() -> None:
    iban = PATTERNS["bastion.guard.results.values._IBAN"]
    assert not iban.may_match("no account here " * LONG)
    assert iban.may_match("pay GB29NWBK60161331926819 " + "x" * LONG)
    assert iban.may_match("short text")  # below `LONG`: searched by Python's engine directly
    path = PATTERNS["bastion.guard.results.values._PATH"]
    assert path.may_match("x" * LONG + " read notes.\u017fh")  # the long s: found case-insensitively, as Python does


@pytest.mark.parametrize("name", ["_BASE64", "_HEX", "_PERCENT"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_no_encoded_blob_is_shorter_than_the_detectors_shortcut(name: str, data: st.DataObject) -> None:
    # `encoded_directives` returns at once for a text shorter than `SHORTEST_BLOB`
    pattern = PATTERNS[f"bastion.guard.results.encoded.{name}"]
    assert len(data.draw(st.from_regex(pattern.pattern, fullmatch=True))) >= encoded.SHORTEST_BLOB


def test_a_long_text_with_a_lone_surrogate_is_searched_as_is() -> None:
    iban = PATTERNS["bastion.guard.results.values._IBAN"]
    text = "\ud800 pay GB29NWBK60161331926819 " + "x" * LONG
    assert iban.may_match(text)
    assert _spans(iban.finditer(text)) == _spans(iban.pattern.finditer(text))
