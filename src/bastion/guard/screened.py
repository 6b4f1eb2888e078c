"""A regex written as alternatives, each searched only when the text holds the literals it needs.

A detector's pattern is an alternation of branches (`<system>`, `IMPORTANT!!!`, `TODO: send`, ...)
most of which begin with a word boundary or a class, which defeats the regex engine's literal
prefix scan: on a long text (a query's thousand rows, a web page) every branch is tried at every
position, milliseconds of CPU on the result's way to the agent, though almost no text holds the
words any branch needs. A `Screened` pattern keeps each branch with those words (`Branch.needs`:
every group must occur, any literal of a group will do) and searches only the branches whose
words the text holds; in a long text, a branch whose matches all begin with one of a few
literals (`Branch.lead`) is tried only where they occur. The literals a text holds are found in
one pass: an Aho-Corasick automaton over a short text, an RE2 set over a long one.

Exact, not a heuristic: the answer is the full alternation's, match for match. A branch whose
needed literal is nowhere in the text cannot match anywhere in it, and the alternation's own
rule is kept when several branches can: the leftmost match wins, and at one position the first
branch in order that matches (`search`); `finditer` goes on from each match's end, as the regex
engine does; a branch tried only at its lead's places finds there what a search finds, as every
match begins at one. `tests/unit/guard/test_screened.py` holds every branch's literals and lead to
matches generated from it, and every screened pattern to its full alternation.

Case-insensitive patterns are screened on a fold of the text in which every character the
regex engine matches to an ASCII letter is that letter (`fold`), so a literal can only be missed
where the regex could not match it either.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, Protocol, TypeVar

import ahocorasick  # type: ignore[import-not-found,unused-ignore]

IGNORECASE_TO_ASCII = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
"""The characters beyond ASCII that Python's `re.IGNORECASE` matches to an ASCII letter (dotted
capital I, dotless i, long s, the Kelvin sign); `test_screened.py` derives this table from the
regex engine over every code point."""

ANCHOR_DENSITY = 16
"""A lead found more often than once per this many characters is not worth trying place by place."""

LONG = 2048
"""From this length a text's literals are found by one RE2 set match rather than by the automaton,
which yields one Python object per occurrence."""

MEMO_ENTRIES = 512
"""Sets of found literals a memo keeps (with what they decide) at most; a full memo is emptied."""
MEMO_WORDS = 24
"""A set of more literals than this is decided afresh, not remembered: a text's author chooses which
literals its sentences hold, and large keys would let it fill memory."""


V = TypeVar("V")


def remember(memo: dict[frozenset[str], V], found: frozenset[str], value: V) -> V:
    """`value`, kept in `memo` under `found` unless `found` is too large a key (`MEMO_WORDS`); a full
    memo (`MEMO_ENTRIES`) is emptied first."""
    if len(found) <= MEMO_WORDS:
        if len(memo) >= MEMO_ENTRIES:
            memo.clear()
        memo[found] = value
    return value


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


class LongText:
    """The literals a long text's fold holds, and the fold (where a branch's lead is looked for)."""

    __slots__ = ("screen", "words")

    def __init__(self, words: frozenset[str], screen: str) -> None:
        self.words = words
        self.screen = screen


Found = frozenset[str] | LongText
"""The literals a text's fold holds: a short text's, or a `LongText` (which keeps the fold)."""


def holds_any(found: Found, group: frozenset[str]) -> bool:
    """Whether a text whose literals are `found` holds one of `group` (all registered with its `Literals`)."""
    words = found.words if isinstance(found, LongText) else found
    return not words.isdisjoint(group)


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
        self._ordered = tuple(sorted(self.words))

    def find(self, text: str) -> Found:
        """The literals occurring in `fold(text)`: one automaton pass over a short text (it yields each
        occurrence); over a long one, one pass of an RE2 set of them all (it says which occur)."""
        screen = fold(text)
        if len(screen) >= LONG:
            try:
                found = _literal_set(self._ordered).Match(screen) or ()  # None when none occurs
                words = frozenset(self._ordered[i] for i in found)
            except UnicodeEncodeError:  # a lone surrogate: RE2 reads UTF-8, the automaton any text
                words = frozenset(word for _, word in self._automaton.iter(screen))
            return LongText(words, screen)
        return frozenset(word for _, word in self._automaton.iter(screen))


@cache
def _literal_set(words: tuple[str, ...]) -> Any:
    """An RE2 set matching each of `words` literally (quoted `\\Q...\\E`, which a lower-case word cannot end):
    `Match` gives the indexes of those a text holds."""
    import re2  # type: ignore[import-untyped]  # loaded by the first long text, not by every gateway

    options = re2.Options()
    options.log_errors = False
    # The binding does not say when a set match runs out of memory (it would report fewer literals):
    # room well beyond what a set of literals' automaton can use (a state per literal prefix).
    options.max_mem = 64 << 20
    literals = re2.Set.SearchSet(options)
    for word in words:
        literals.Add(f"\\Q{word}\\E")
    literals.Compile()
    return literals


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
    if sum(map(screen.count, lead)) > len(screen) // ANCHOR_DENSITY:
        return None
    starts: set[int] = set()
    for word in lead:
        at = screen.find(word)
        while at >= 0:
            starts.add(at)
            at = screen.find(word, at + 1)
    return sorted(starts)


class Screened:
    """`re.compile("|".join(branches), flags)`, searching only the branches the text can match."""

    def __init__(self, branches: Sequence[Branch], flags: int = 0) -> None:
        self._compiled = tuple(re.compile(b.pattern, flags) for b in branches)
        for branch, compiled in zip(branches, self._compiled, strict=True):
            if compiled.groups:
                raise ValueError(f"a screened branch has a capturing group: {branch.pattern!r}")
            if compiled.search("") is not None:
                raise ValueError(f"a screened branch can match nothing: {branch.pattern!r}")
            if not branch.needs and not branch.lead:
                raise ValueError(f"a screened branch names no literal it needs: {branch.pattern!r}")
        self.branches = tuple(branches)
        self._flags = flags
        groups = [(*b.needs, b.lead) if b.lead else b.needs for b in branches]
        self.literals = Literals(word for needs in groups for group in needs for word in group)
        self._needs = tuple(tuple(sorted((frozenset(g) for g in needs), key=len)) for needs in groups)
        """Each branch's groups (its lead one of them), the smallest first: a branch is ruled out sooner."""
        self._live: dict[frozenset[str], tuple[tuple[int, ...], tuple[re.Pattern[str], ...]]] = {}

    @cached_property
    def full(self) -> re.Pattern[str]:
        """The whole alternation: the reference the screened searches equal (compiled when first read)."""
        return re.compile("|".join(f"(?:{b.pattern})" for b in self.branches), self._flags)

    def live(self, text: str, found: Found | None = None) -> tuple[Searcher, ...]:
        """The branches (in order) whose literals `text` holds. `found`: the literals `text`'s fold
        holds, if already known (from a `Literals` holding at least this pattern's)."""
        if found is None:
            found = self.literals.find(text)
        if isinstance(found, LongText):
            return self._live_in_long(text, found)
        return self._remembered(found)[1]

    def _remembered(self, found: frozenset[str]) -> tuple[tuple[int, ...], tuple[re.Pattern[str], ...]]:
        """The indexes and patterns of the branches whose literals are all in `found` (remembered)."""
        live = self._live.get(found)
        if live is None:
            indexes = tuple(i for i, needs in enumerate(self._needs) if all(not found.isdisjoint(g) for g in needs))
            live = remember(self._live, found, (indexes, tuple(self._compiled[i] for i in indexes)))
        return live

    def _live_in_long(self, text: str, long: LongText) -> tuple[Searcher, ...]:
        """`live` of a long text: each branch with a lead tried only where it occurs (the fold is as
        long as the text, so its places are the text's)."""
        anchors = len(long.screen) == len(text)
        live: list[Searcher] = []
        for index in self._remembered(long.words)[0]:
            pattern, branch = self._compiled[index], self.branches[index]
            starts = _lead_starts(long.screen, branch.lead) if branch.lead and anchors else None
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
