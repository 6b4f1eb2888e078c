"""Every detector over every string of a result: `scan_result` (injection) and `volume_findings`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bastion.guard.results.content import strings
from bastion.guard.results.detectors import text_hits
from bastion.guard.results.encoded import encoded_directives
from bastion.guard.results.findings import ResultFinding
from bastion.guard.results.hidden import HIDDEN_DETECTORS
from bastion.guard.results.quiet import quiet
from bastion.guard.results.volume import result_bytes, result_records

MIN_LENGTH = 8
"""Shorter strings (ids, flags, numbers) carry no instruction."""


Hit = tuple[str, int, int, str]
"""(detector, start, end, excerpt): a finding before it is placed at a path."""
DETECTORS: tuple[Callable[[str], Iterable[Hit]], ...] = (text_hits, *HIDDEN_DETECTORS, encoded_directives)
"""What a result's string is read by (`quiet` knows each: a detector added here must be taught to it)."""


def scan_string(path: str, text: str) -> list[ResultFinding]:
    """Injection findings in one string of a result."""
    return [ResultFinding(d, path, s, e, x) for d, s, e, x in _hits(text)]


def scan_result(result: Any) -> list[ResultFinding]:
    """Injection findings anywhere in a result (tool result, resource contents, prompt, sampling request).

    A string the result holds more than once (`structuredContent` mirroring `content`, say) is
    scanned once; its findings are reported at every path it is at."""
    found: list[ResultFinding] = []
    seen: dict[str, list[Hit]] = {}
    for path, text in strings(result):
        hits = seen.get(text)
        if hits is None:
            hits = seen[text] = _hits(text)
        found.extend(ResultFinding(d, path, s, e, x) for d, s, e, x in hits)
    return found


def _hits(text: str) -> list[Hit]:
    if len(text) < MIN_LENGTH or quiet(text):
        return []
    return every_hit(text)


def every_hit(text: str) -> list[Hit]:
    """Every detector's hits on `text`, none skipped (`_hits` skips a `quiet` text)."""
    hits: list[Hit] = []
    for detector in DETECTORS:
        hits.extend(detector(text))
    return hits


def volume_findings(result: Mapping[str, Any], max_records: int, max_bytes: int) -> list[ResultFinding]:
    """A finding for each threshold the result is over."""
    found: list[ResultFinding] = []
    size = result_bytes(result)
    if size > max_bytes:
        found.append(ResultFinding("volume.bytes", "", excerpt=f"{size} bytes, over max_bytes {max_bytes}"))
    if size <= max_records:
        # Every record takes more than a byte of the result's JSON (an item of an array and its
        # comma, a row of a table and its line break): a result this small holds no more records.
        return found
    records = result_records(result)
    if records > max_records:
        found.append(ResultFinding("volume.records", "", excerpt=f"{records} records, over max_records {max_records}"))
    return found
