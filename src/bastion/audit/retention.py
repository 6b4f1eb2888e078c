"""Retention: how long, or how many, audit events are kept.

Pruning removes the oldest events and records a checkpoint (the last removed sequence
number and hash) plus an `audit.pruned` event in the chain, so what remains still verifies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number with an optional unit, e.g. `3600`, `90m`, `12h`, `30d`, `2w`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 3600, 90m, 12h, 30d or 2w")
    return float(match[1]) * _UNIT_SECONDS[match[2]]


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep events younger than `max_age_s` and at most the newest `max_events`; None: no limit."""

    max_age_s: float | None = None
    max_events: int | None = None

    @property
    def enabled(self) -> bool:
        return self.max_age_s is not None or self.max_events is not None

    def cutoff(self, now: float) -> float | None:
        """Events older than this Unix time are removed (None: no age limit)."""
        return None if self.max_age_s is None else now - self.max_age_s
