"""What the metrics' gauges read from the running gateway when Prometheus scrapes.

Kept apart from `metrics.py` so the gateway can describe its servers without importing
`prometheus_client` (with metrics off, as under `bastion wrap`, it is never imported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerReading:
    """One upstream's state when scraped."""

    name: str
    up: bool
    restarts: int
    agent_sessions: int


@dataclass(frozen=True, slots=True)
class LiveReadings:
    """What the gauges read at scrape time; each a callable so nothing is kept in between."""

    servers: Callable[[], Iterable[ServerReading]]
    approvals_pending: Callable[[], int]
    audit_queue_depth: Callable[[], int]
