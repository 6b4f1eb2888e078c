"""What an alert is, and the one method the rest of Bastion calls to raise one."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Severity(enum.IntEnum):
    INFO = 10
    WARNING = 20
    CRITICAL = 30

    @property
    def label(self) -> str:
        return self.name.lower()


class AlertKind(enum.StrEnum):
    CALL_DENIED = "call_denied"
    CALL_FLAGGED = "call_flagged"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_EXPIRED = "approval_expired"
    TOOL_DEFINITION_CHANGED = "tool_definition_changed"
    EGRESS_BLOCKED = "egress_blocked"
    RATE_LIMIT_TRIPPED = "rate_limit_tripped"
    RATE_LIMIT_STORAGE_FAILING = "rate_limit_storage_failing"
    RATE_LIMIT_STORAGE_RECOVERED = "rate_limit_storage_recovered"
    SERVER_CRASHED = "server_crashed"
    SERVER_RESTARTED = "server_restarted"
    AUDIT_STORE_FAILING = "audit_store_failing"
    RESULT_FLAGGED = "result_flagged"


DEFAULT_SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.CALL_DENIED: Severity.WARNING,
    AlertKind.CALL_FLAGGED: Severity.WARNING,
    AlertKind.APPROVAL_REQUESTED: Severity.WARNING,
    AlertKind.APPROVAL_EXPIRED: Severity.WARNING,
    AlertKind.TOOL_DEFINITION_CHANGED: Severity.CRITICAL,
    AlertKind.EGRESS_BLOCKED: Severity.CRITICAL,
    AlertKind.RATE_LIMIT_TRIPPED: Severity.WARNING,
    AlertKind.RATE_LIMIT_STORAGE_FAILING: Severity.CRITICAL,
    AlertKind.RATE_LIMIT_STORAGE_RECOVERED: Severity.INFO,
    AlertKind.SERVER_CRASHED: Severity.CRITICAL,
    AlertKind.SERVER_RESTARTED: Severity.INFO,
    AlertKind.AUDIT_STORE_FAILING: Severity.CRITICAL,
    AlertKind.RESULT_FLAGGED: Severity.WARNING,
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing that happened. `details` must be JSON-ready; `summary` is one human line.

    Two alerts with the same kind, summary and details are "identical" and coalesced.
    """

    kind: AlertKind
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    """None: the kind's default severity."""
    time: float = field(default_factory=time.time)

    @property
    def level(self) -> Severity:
        return self.severity if self.severity is not None else DEFAULT_SEVERITY[self.kind]

    @property
    def coalesce_key(self) -> str:
        return json.dumps([self.kind.value, self.summary, self.details], sort_keys=True, default=str)


class AlertEmitter(Protocol):
    """Raise an alert. Never blocks and never raises: alerts must not slow the data path."""

    def emit(self, alert: Alert) -> None: ...


@dataclass(frozen=True, slots=True)
class AlertDeliveryFailed:
    """An alert could not be delivered to a webhook after every retry."""

    url: str
    kind: str
    attempts: int
    error: str


class EventLog(Protocol):
    """Where the dispatcher tells of an alert it could not deliver (a log line by default)."""

    def record(self, event: object) -> None: ...
