"""Where in a long text a pattern can match: windows around the substrings it cannot match without.

Running a dozen regexes over 100 KB of prose costs tens of milliseconds; running them over the few
windows around their required substrings costs almost nothing. `Pattern.finditer(text, start, end)`
keeps the real text's boundaries (`\\b`, `^`), so a window changes no result as long as it covers the
pattern's longest possible match around its needle.
"""

from __future__ import annotations

from collections.abc import Iterable

LONG_TEXT = 4096
"""Shorter texts are searched whole."""
MAX_WINDOWS = 64


def needle_windows(lowered: str, needles: Iterable[str], before: int, after: int) -> list[tuple[int, int]]:
    """Merged (start, end) windows reaching `before` characters before and `after` beyond each needle."""
    spans: list[tuple[int, int]] = []
    for needle in needles:
        at = lowered.find(needle)
        while at != -1:
            spans.append((max(0, at - before), min(len(lowered), at + len(needle) + after)))
            if len(spans) > MAX_WINDOWS:
                return [(0, len(lowered))]  # needles everywhere: one pass over the whole text is cheaper
            at = lowered.find(needle, at + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
