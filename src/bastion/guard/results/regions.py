"""Which part of a flagged string the injection is: the values to remember come from there.

A poisoned email or page also carries honest values (the bill's real IBAN, a friend's real
address); remembering those would hold the user's own work. A finding's region runs from where
it starts (the `<INFORMATION>` tag, the `TODO:`) to its closing tag (`</INFORMATION>`), else to
the end of its paragraph or record (the next field of a YAML or JSON listing), at most
`MAX_REGION` characters on. A finding without a span (a whole-string judgment) is located by
its excerpt; when that fails, the region is the string.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from bastion.guard.results.findings import ResultFinding

MAX_REGION = 2000
MAX_FOLDED_LINES = 50
"""Lines looked back over for the field a folded value belongs to."""
_FIELD = re.compile(r"([ \t]*)(?:-[ \t]+)?[\"']?[A-Za-z_][\w-]{0,40}[\"']?:(?:[ \t]|$)|([ \t]*)-[ \t]|([ \t]*)[{\[]")
_OPENING_TAG = re.compile(r"<\s*([A-Za-z_][\w-]*)[^<>]*>")


def regions(text: str, findings: Sequence[ResultFinding]) -> list[tuple[int, int]]:
    """The (start, end) spans of `text` the findings' injections occupy, merged."""
    spans: list[tuple[int, int]] = []
    for finding in findings:
        located = _locate(text, finding)
        if located is None:
            return [(0, len(text))]
        spans.append(_extend(text, *located))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _locate(text: str, finding: ResultFinding) -> tuple[int, int] | None:
    if finding.end > finding.start:
        return finding.start, finding.end
    needle = _quoted(finding.excerpt) or finding.excerpt
    needle = needle.strip().strip(".")[:40]
    if len(needle) < 8:
        return None
    at = text.casefold().find(needle.casefold())
    return None if at == -1 else (at, at + len(needle))


def _quoted(excerpt: str) -> str | None:
    """The text inside a repr'd excerpt (`"'ignore all previous'"`), as catalogue reasons give it."""
    match = re.search(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", excerpt)
    if match is None:
        return None
    try:
        value = ast.literal_eval(match[0])
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def _extend(text: str, start: int, end: int) -> tuple[int, int]:
    limit = min(len(text), end + MAX_REGION)
    tag = _OPENING_TAG.fullmatch(text[start:end].strip())
    if tag is not None:
        close = text.lower().find(f"</{tag[1].lower()}", end, limit)
        if close != -1:
            return start, text.find(">", close, limit) + 1 or limit
    paragraph = text.find("\n\n", end, limit)
    stop = paragraph if paragraph != -1 else limit
    return start, _record_end(text, start, end, stop)


def _record_end(text: str, start: int, end: int, stop: int) -> int:
    """Where the record holding the finding ends in a listing (YAML, JSON lines): the next line
    that starts a field or item at the finding's own depth or shallower. Deeper lines are the
    value's continuation (YAML folds long strings), not new fields."""
    line_start = _field_line(text, text.rfind("\n", 0, start) + 1)
    depth = _depth(text, line_start)
    at = text.find("\n", end, stop)
    while at != -1:
        field = _FIELD.match(text, at + 1, stop)
        if field is not None and _depth(text, at + 1) <= depth:
            return at
        at = text.find("\n", at + 1, stop)
    return stop


def _field_line(text: str, line_start: int) -> int:
    """The start of the line whose field the line at `line_start` continues: itself if it starts
    a field, else the nearest shallower line before it that does (a folded value's first line).
    The finding may sit on a continuation line; its record is the field's, not the line's."""
    depth = _depth(text, line_start)
    at = line_start
    for _ in range(MAX_FOLDED_LINES):
        if _FIELD.match(text, at) is not None and (at == line_start or _depth(text, at) < depth):
            return at
        if at == 0:
            break
        at = text.rfind("\n", 0, at - 1) + 1
    return line_start


def _depth(text: str, line_start: int) -> int:
    """Indentation of the key on a line, a list item's dash counted as indentation."""
    match = re.compile(r"[ \t]*(?:-[ \t]+)?").match(text, line_start)
    return match.end() - line_start if match is not None else 0
