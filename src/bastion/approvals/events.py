"""Auditable approval events, one dataclass each, and the sink they are recorded through.

The gateway's sink is wired into the audit store; until then `LoggingEventSink` writes them
as JSON log lines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from bastion.approvals.model import AllowRule, Approval

logger = logging.getLogger("bastion.events")


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """A call was held: a pending approval now waits for a person."""

    approval: Approval
    call_id: str


@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    """A person approved or denied a held call. `via` is `cli`, `api` or `dashboard`."""

    approval: Approval
    via: str


@dataclass(frozen=True, slots=True)
class ApprovalExpired:
    """Nobody decided in time; the approval is denied."""

    approval: Approval


@dataclass(frozen=True, slots=True)
class ApprovalUsed:
    """An approved call went through (`call_id`), using up its approval."""

    approval: Approval
    call_id: str


@dataclass(frozen=True, slots=True)
class AllowRuleApplied:
    """A held call passed because of an "always allow" rule."""

    rule: AllowRule
    call_id: str


class EventSink(Protocol):
    """Where auditable events go. `record` must not block: it is called on the data path."""

    def record(self, event: object) -> None: ...


def event_dict(event: object) -> dict[str, Any]:
    """An event as a JSON-ready mapping, with its type under `event`."""
    fields = dataclasses.asdict(event) if dataclasses.is_dataclass(event) and not isinstance(event, type) else {}
    return {"event": type(event).__name__, **fields}


class LoggingEventSink:
    """Writes each event as one JSON log line (logger `bastion.events`)."""

    def record(self, event: object) -> None:
        logger.info("%s", json.dumps(event_dict(event), default=str, sort_keys=True))


class ListEventSink:
    """Keeps events in memory (tests, and fan-out to several sinks)."""

    def __init__(self, *also: EventSink) -> None:
        self.events: list[object] = []
        self._also = also

    def record(self, event: object) -> None:
        self.events.append(event)
        for sink in self._also:
            sink.record(event)
