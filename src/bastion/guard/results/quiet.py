"""A short text no injection detector can flag, known from one pass over it.

Each detector (`scan._hits`: the text detectors, the hidden-content ones, the encoded blobs)
already screens a text before its regexes run, but each on its own: four literal automata,
a sentence split, three blob patterns, each touching its own code and tables. On a tool's
short answer, arriving 20 ms after the last (code gone cold), those screens were most of the
result checks' time on a call's way back to the agent. `quiet` decides for all of them at
once, from the same literals, found in one pass of one automaton over the lower-cased text:

- the framing, addressing and directive patterns (`Screened`): no branch has all its literal groups;
- the policy catalogue's injection phrases: its own gate (`injection.past_gate`) stops the text;
- the pinning scanner's sentence judge: `may_find` is false for the whole text's literals,
  hence for every sentence's and pair's (each holds a subset, and `may_find` only grows with
  them);
- the hidden-content detectors: no `<` (comments, styled elements, HTML images) and no `](`
  (markdown images and links);
- the encoded blobs: no `%`, and no run a base64 or hex blob begins with.

Exact, not a heuristic: `quiet` is true only where every detector finds nothing, because each
condition is the detector's own screen, fed a superset of what that screen would find. It
answers only for ASCII texts shorter than `LONG` (for which every detector's fold or
normalisation is the lower-cased text, a backtick read as a quote by the sentence judge); any
other text is judged in full. `tests/unit/guard/results/test_quiet.py` holds it to the full scan
on generated texts, and fails when a detector is added without a condition here.
"""

from __future__ import annotations

import re
from functools import cache

from bastion.guard.pinning import scanner
from bastion.guard.policy.catalogue import injection
from bastion.guard.results import addressed, detectors, directed, encoded, hidden
from bastion.guard.screened import LONG, Literals, remember

COVERED = frozenset({
    detectors.framing, addressed.addressed, directed.directed, detectors.catalogue, detectors.sentences,
    *hidden.HIDDEN_DETECTORS, encoded.encoded_directives,
})  # fmt: skip
"""The detectors `quiet` answers for (`scan._hits` runs these and no other)."""

_BLOB_START = re.compile(r"[A-Za-z0-9+/_-]{24}|[0-9A-Fa-f]{2}(?:(?:\s|\\x)?[0-9A-Fa-f]{2}){15}")
"""What every base64 and hex blob of `encoded` begins with (a URL-encoded one needs a `%`)."""
_HIDDEN_MARKS = ("<", "](", "%")
"""Without these, no comment, styled element, image or link, and no URL-encoded blob."""
_QUIET: dict[frozenset[str], bool] = {}
"""`_quiet_for`'s answers by the literals found (texts share a few such sets)."""


@cache
def _literals() -> Literals:
    """Every literal the screened detectors look for, in one automaton (built by the first short text)."""
    return Literals(
        (
            *detectors.FRAMING.literals.words,
            *addressed.ADDRESSED.literals.words,
            *directed.DIRECTED.literals.words,
            *injection.NEEDLE_SET,
            *injection.AGENT_NEEDLE_SET,
            *scanner.LITERALS.words,
        )
    )


def quiet(text: str) -> bool:
    """True only where no detector of `scan._hits` can flag `text`; False also when unsure."""
    if len(text) >= LONG or not text.isascii():
        return False
    if any(mark in text for mark in _HIDDEN_MARKS) or _BLOB_START.search(text) is not None:
        return False
    found = _found(text)
    if "`" in text:  # the sentence judge reads it as a quote
        found |= _found(text.replace("`", "'"))
    if injection.past_gate(text, found):
        return False
    verdict = _QUIET.get(found)
    if verdict is None:
        verdict = remember(_QUIET, found, _quiet_for(found))
    return verdict


def _found(text: str) -> frozenset[str]:
    """The literals a short text's lower-case form holds."""
    found = _literals().find(text)
    if not isinstance(found, frozenset):  # unreachable: `quiet` reads no text of `LONG` characters
        raise TypeError("a long text's literals")
    return found


def _quiet_for(found: frozenset[str]) -> bool:
    """Whether a short ASCII text whose lower-case form holds exactly the literals `found` gets
    past the gates of the framing, addressing, directive and sentence detectors (the rest are checked apart)."""
    return (
        not detectors.FRAMING.live("", found)
        and not addressed.ADDRESSED.live("", found)
        and not directed.DIRECTED.live("", found)
        and not scanner.may_find(found & scanner.LITERALS.words)
    )
