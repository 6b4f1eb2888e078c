"""The overview's charts: calls, denials and held calls per minute over the last hour.

Read through the `AuditReader` protocol only (so any backend serves it), without a time
index: sequence numbers grow with time, so the first event of the window is found by paging
back from the newest event, then the window is read forward by sequence number. The cost
is proportional to the events of the last hour, never to the size of the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bastion.audit.query import EventQuery
from bastion.audit.search import search
from bastion.audit.store import AuditReader

WINDOW_SECONDS = 3600
BUCKET_SECONDS = 60
BUCKETS = WINDOW_SECONDS // BUCKET_SECONDS


def _zeros() -> list[int]:
    return [0] * BUCKETS


@dataclass(slots=True)
class Activity:
    """Per-minute counts, oldest minute first. `calls` counts tool-call verdicts; `denials` the denied ones."""

    since: float
    calls: list[int] = field(default_factory=_zeros)
    denials: list[int] = field(default_factory=_zeros)
    held: list[int] = field(default_factory=_zeros)


def last_hour(reader: AuditReader, now: float | None = None) -> Activity:
    """Count the last hour's tool calls, denials and held calls, a minute a bucket (blocking: run off the loop)."""
    end = time.time() if now is None else now
    since = end - WINDOW_SECONDS
    activity = Activity(since)
    before = search(reader, EventQuery(until=since), limit=1).events
    cursor = before[0].seq if before else None
    for chained in reader.rows(EventQuery(), newest_first=False, cursor=cursor):
        row = chained.row
        if row.time < since or row.time >= end:
            continue
        bucket = int((row.time - since) // BUCKET_SECONDS)
        if row.type == "call.verdict":
            activity.calls[bucket] += 1
            if row.verdict == "deny":
                activity.denials[bucket] += 1
        elif row.type == "approval.requested":
            activity.held[bucket] += 1
    return activity
