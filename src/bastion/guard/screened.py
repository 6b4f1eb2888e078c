"""A regex written as alternatives, each searched only when the text holds the literals it needs.

A detector's pattern is an alternation of branches (`<system>`, `IMPORTANT!!!`, `TODO: send`, ...)
most of which begin with a word boundary or a class, which defeats the regex engine's literal
prefix scan: on a long text (a query's thousand rows, a web page) every branch is tried at every
position, milliseconds of CPU on the result's way to the agent, though almost no text holds the
words any branch needs. A `Screened` pattern keeps each branch with those words (`Branch.needs`:
every group must occur, any literal of a group will do) and searches only the branches whose
words the text holds.

Exact, not a heuristic: the answer is the full alternation's, match for match. A branch whose
needed literal is nowhere in the text cannot match anywhere in it, and the alternation's own
rule is kept when several branches can: the leftmost match wins, and at one position the first
branch in order that matches (`search`); `finditer` goes on from each match's end, as the regex
engine does. `tests/unit/guard/test_screened.py` holds every detector to its full pattern.

Case-insensitive patterns are screened on a fold of the text in which every character the
regex engine matches to an ASCII letter is that letter (`fold`), so a literal can only be missed
where the regex could not match it either.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import ahocorasick  # type: ignore[import-not-found,unused-ignore]

IGNORECASE_TO_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
"""The characters beyond ASCII that Python's `re.IGNORECASE` matches to an ASCII letter (dotted
capital I, dotless i, long s, the Kelvin sign); `test_screened.py` derives this table from the
regex engine over every code point."""

ANCHOR_DENSITY = 16
"""A lead found more often than once per this many characters is not worth trying place by place."""

LONG = 2048
"""From this length a text's literals are found by one `in` per literal (each a fast C search)
rather than by the automaton, which yields one Python object per occurrence."""

_LIVE_MEMO = 4096
"""Sets of found literals remembered per pattern, with the branches they make live."""


def fold(text: str) -> str:
    """`text` lower-cased, with each character `re.IGNORECASE` matches to an ASCII letter made that letter.

    A literal of a pattern (lower-case) occurs in the fold wherever the pattern could match it in
    `text`, case-insensitively or not: folding only ever adds occurrences."""
    return text.lower() if text.isascii() else text.translate(IGNORECASE_TO_ASCII).lower()


@dataclass(frozen=True, slots=True)
class Branch:
    """One alternative of a screened pattern and the literals it cannot match without."""

    pattern: str
    needs: tuple[tuple[str, ...], ...]
    """Groups of lower-case literals: a match holds at least one literal of every group. At least one
    group: a text holding none of a pattern's literals is not searched at all."""
    lead: tuple[str, ...] = ()
    """Lower-case literals one of which every match begins with (a group of `needs` too). In a long
    text the branch is then tried only where one of them occurs, unless they occur too often."""


class Probe:
    """The literals of a long text's fold, each looked for once and only when a branch asks."""

    __slots__ = ("_known", "screen")

    def __init__(self, screen: str) -> None:
        self.screen = screen
        """The text's fold."""
        self._known: dict[str, bool] = {}

    def holds_any(self, group: frozenset[str]) -> bool:
        """Whether the fold holds a literal of `group`."""
        known = self._known
        for word in group:
            held = known.get(word)
            if held is None:
                held = known[word] = word in self.screen
            if held:
                return True
        return False


Found = frozenset[str] | Probe
"""The literals a text's fold holds: all of them (a short text, one automaton pass) or a `Probe`."""


def holds_any(found: Found, group: frozenset[str]) -> bool:
    """Whether a text whose literals are `found` holds one of `group` (all registered with its `Literals`)."""
    return found.holds_any(group) if isinstance(found, Probe) else not found.isdisjoint(group)


class Literals:
    """Which of a set of lower-case literals a text's fold holds."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(words)
        if any(not w or w != w.lower() for w in self.words):
            raise ValueError("screening literals are non-empty lower-case strings")
        self._automaton = ahocorasick.Automaton()
        for word in self.words:
            self._automaton.add_word(word, word)
        self._automaton.make_automaton()

    def find(self, text: str) -> Found:
        """The literals occurring in `fold(text)`: found in one pass over a short text; over a long one,
        a `Probe` that looks for each literal on demand (a fast C search each; most branches are ruled
        out by their first group, and the automaton would yield every occurrence of a common literal)."""
        screen = fold(text)
        if len(screen) >= LONG:
            return Probe(screen)
        return frozenset(word for _, word in self._automaton.iter(screen))


class Searcher(Protocol):
    """What a live branch is searched with: its compiled pattern, or an `_Anchored` one."""

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None: ...


class _Anchored:
    """A branch tried only where its lead occurs: `pattern.search(text, pos)`, by `match` at those places."""

    __slots__ = ("_pattern", "_starts")

    def __init__(self, pattern: re.Pattern[str], starts: list[int]) -> None:
        self._pattern = pattern
        self._starts = starts

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None:
        # Every match starts at an occurrence of the lead, so the first place at or after `pos`
        # where the pattern matches is where `search` would have found it (`match` at a place sees
        # the text before it, for `\b` and lookbehinds, as `search` does).
        starts, match_at = self._starts, self._pattern.match
        for at in starts[bisect.bisect_left(starts, pos) :]:
            match = match_at(string, at)
            if match is not None:
                return match
        return None


def _lead_starts(screen: str, lead: tuple[str, ...]) -> list[int] | None:
    """Where a literal of `lead` begins in `screen`, in order; None when so many places would cost
    more to try one by one than one search does."""
    most = len(screen) // ANCHOR_DENSITY
    starts: set[int] = set()
    for word in lead:
        at = screen.find(word)
        while at >= 0:
            starts.add(at)
            if len(starts) > most:
                return None
            at = screen.find(word, at + 1)
    return sorted(starts)


class Screened:
    """`re.compile("|".join(branches), flags)`, searching only the branches the text can match."""

    def __init__(self, branches: Sequence[Branch], flags: int = 0) -> None:
        for branch in branches:
            compiled = re.compile(branch.pattern, flags)
            if compiled.groups:
                raise ValueError(f"a screened branch has a capturing group: {branch.pattern!r}")
            if compiled.search("") is not None:
                raise ValueError(f"a screened branch can match nothing: {branch.pattern!r}")
            if not branch.needs and not branch.lead:
                raise ValueError(f"a screened branch names no literal it needs: {branch.pattern!r}")
        self.branches = tuple(branches)
        self.full = re.compile("|".join(f"(?:{b.pattern})" for b in branches), flags)
        """The whole alternation: the reference the screened searches equal."""
        groups = [(*b.needs, b.lead) if b.lead else b.needs for b in branches]
        self.literals = Literals(word for needs in groups for group in needs for word in group)
        self._compiled = tuple(re.compile(b.pattern, flags) for b in branches)
        self._needs = tuple(tuple(sorted((frozenset(g) for g in needs), key=len)) for needs in groups)
        """Each branch's groups (its lead one of them), the smallest first: a long text's probe looks for fewer
        literals."""
        self._live: dict[frozenset[str], tuple[re.Pattern[str], ...]] = {}

    def live(self, text: str, found: Found | None = None) -> tuple[Searcher, ...]:
        """The branches (in order) whose literals `text` holds. `found`: the literals `text`'s fold
        holds, if already known (from a `Literals` holding at least this pattern's)."""
        if found is None:
            found = self.literals.find(text)
        if isinstance(found, Probe):
            return self._live_in_long(text, found)
        live: tuple[Searcher, ...] | None = self._live.get(found)
        if live is None:
            if len(self._live) >= _LIVE_MEMO:
                self._live.clear()
            live = self._live[found] = tuple(
                pattern
                for pattern, needs in zip(self._compiled, self._needs, strict=True)
                if all(not found.isdisjoint(group) for group in needs)
            )
        return live

    def _live_in_long(self, text: str, probe: Probe) -> tuple[Searcher, ...]:
        """`live` of a long text: each branch with a lead tried only where it occurs (the fold is as
        long as the text, so its places are the text's)."""
        anchors = len(probe.screen) == len(text)
        live: list[Searcher] = []
        for pattern, needs, branch in zip(self._compiled, self._needs, self.branches, strict=True):
            if not all(map(probe.holds_any, needs)):
                continue
            starts = _lead_starts(probe.screen, branch.lead) if branch.lead and anchors else None
            live.append(pattern if starts is None else _Anchored(pattern, starts))
        return tuple(live)

    def search(self, text: str, found: Found | None = None) -> re.Match[str] | None:
        """`self.full.search(text)`, as a match of the branch that made it."""
        best: re.Match[str] | None = None
        for pattern in self.live(text, found):
            match = pattern.search(text)
            if match is not None and (best is None or match.start() < best.start()):
                best = match
        return best

    def finditer(self, text: str, found: Found | None = None) -> Iterator[re.Match[str]]:
        """`self.full.finditer(text)`: the same spans and texts, each a match of the branch that made it."""
        live = self.live(text, found)
        if not live:
            return
        matches: list[re.Match[str] | None] = [pattern.search(text) for pattern in live]
        while True:
            best: re.Match[str] | None = None
            for match in matches:
                if match is not None and (best is None or match.start() < best.start()):
                    best = match
            if best is None:
                return
            yield best
            end = best.end()
            for i, match in enumerate(matches):
                if match is not None and match.start() < end:
                    matches[i] = live[i].search(text, end)
