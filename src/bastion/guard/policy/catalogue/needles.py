"""Every family's needles found in one pass: a single Aho-Corasick automaton over all of them.

A needle is a lower-case substring without which a family's patterns cannot match (`akia` for an
AWS key, `ignor` for "ignore previous instructions"). Families register their needles at import
(`NEEDLES.add`); the automaton (pyahocorasick, in C) is built once, on first use, over all of
them, and `NEEDLES.find(lowered)` returns every needle occurring in a lower-case text, overlapping
ones included: exactly `{n for n in needles if n in lowered}`, in one linear pass instead of one
`in` test per needle. A family then asks `hits.isdisjoint(MY_NEEDLES)` instead of looping.

`find(lowered, fast=False)` computes the same set with one `in` test per needle: the reference
the differential tests compare the automaton against, and the path a scan takes with the
pre-screen off.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

import ahocorasick  # type: ignore[import-not-found,unused-ignore]

_EMPTY: frozenset[str] = frozenset()


class Needles:
    """The needles of every family and the automaton that finds them all at once."""

    def __init__(self) -> None:
        self._words: set[str] = set()
        self._automaton: ahocorasick.Automaton | None = None
        self._lock = threading.Lock()

    def add(self, words: Iterable[str]) -> frozenset[str]:
        """Register lower-case `words` (a family's needles); returns them as a frozenset for `isdisjoint`."""
        found = frozenset(words)
        if any(not w or w != w.lower() or _SEPARATOR in w for w in found):
            raise ValueError("needles are non-empty lower-case strings without NUL")
        with self._lock:
            if not found <= self._words:
                self._words |= found
                self._automaton = None  # rebuilt on next use, with the new words
        return found

    @property
    def words(self) -> frozenset[str]:
        return frozenset(self._words)

    def _build(self) -> ahocorasick.Automaton:
        with self._lock:
            if self._automaton is None:
                automaton = ahocorasick.Automaton()
                for word in self._words:
                    automaton.add_word(word, word)
                automaton.make_automaton()
                self._automaton = automaton
            return self._automaton

    def find(self, lowered: str, fast: bool = True) -> frozenset[str]:
        """Every registered needle occurring in `lowered` (a lower-cased text)."""
        if not lowered or not self._words:
            return _EMPTY
        if not fast:
            return frozenset(w for w in self._words if w in lowered)
        automaton = self._automaton or self._build()
        return frozenset(word for _, word in automaton.iter(lowered))

    def find_each(self, texts: list[str], fast: bool = True) -> list[frozenset[str]]:
        """`find` of each lower-cased text, in one pass over them joined by NUL (no needle holds one, so no match
        spans two texts); a call's strings usually hold no needle at all, answered by that one pass."""
        if not fast or len(texts) < 2:
            return [self.find(text, fast) for text in texts]
        if not self._words:
            return [_EMPTY] * len(texts)
        automaton = self._automaton or self._build()
        matches = list(automaton.iter(_SEPARATOR.join(texts)))
        if not matches:
            return [_EMPTY] * len(texts)
        starts, at = [], 0
        for text in texts:
            starts.append(at)
            at += len(text) + 1
        found: list[set[str]] = [set() for _ in texts]
        for end, word in matches:
            found[bisect.bisect_right(starts, end) - 1].add(word)
        return [frozenset(f) if f else _EMPTY for f in found]


_SEPARATOR = "\x00"

NEEDLES = Needles()
"""The one registry every family adds its needles to."""
