"""The event bus: each room's events land in a real audit store as their audit kind, and raise their alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bastion.alerts.config import AlertsConfig
from bastion.alerts.dispatcher import AlertDispatcher
from bastion.alerts.from_events import EventAlerts
from bastion.alerts.model import Alert, AlertKind
from bastion.approvals.audit_events import AuditedApprovalEvents, approval_audit_event
from bastion.approvals.events import (
    AllowRuleApplied,
    ApprovalDecided,
    ApprovalExpired,
    ApprovalRequested,
    ApprovalUsed,
    ListEventSink,
)
from bastion.approvals.model import AllowRule, Approval, ApprovalState
from bastion.audit import open_audit_store
from bastion.audit.bus import EventBus
from bastion.audit.chain import decode_row
from bastion.audit.events import EVENT_TYPES, StoredEvent
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditStore
from bastion.guard.pinning.audit_events import AuditedPinEvents, pin_audit_event
from bastion.guard.pinning.events import PinEvent
from bastion.runtime import events as runtime
from bastion.runtime.audit_events import AuditedRuntimeEvents, runtime_audit_event
from bastion.runtime.events import RecordingSink

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Alerts:
    def __init__(self) -> None:
        self.raised: list[Alert] = []
        self.bus: EventBus | None = None

    def on(self, store: AuditStore) -> EventBus:
        """A bus in front of `store` with these alerts subscribed."""
        self.bus = EventBus(store, [EventAlerts(self)])
        return self.bus

    def emit(self, alert: Alert) -> None:
        self.raised.append(alert)


class Pins:
    def __init__(self) -> None:
        self.events: list[PinEvent] = []

    async def emit(self, event: PinEvent) -> None:
        self.events.append(event)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditStore]:
    audit = open_audit_store(tmp_path)
    await audit.open()
    yield audit
    await audit.close()


async def stored(store: AuditStore) -> list[StoredEvent]:
    await store.flush()
    return [decode_row(row) for row in store.rows(EventQuery(), newest_first=False)]


def approval(**changes: Any) -> Approval:
    base = Approval(
        id="ab12cd34",
        agent="bot",
        server="git",
        tool="push",
        arguments={"branch": "main"},
        rule="policy:push",
        reason="pushes need a person",
        created_at=100.0,
        expires_at=400.0,
    )
    return Approval(**{**base.as_dict(), "state": ApprovalState(base.state), **changes})


async def test_approval_events_are_audited_and_forwarded(store: AuditStore) -> None:
    forward = ListEventSink()
    sink = AuditedApprovalEvents(Alerts().on(store), forward)
    decided = approval(state=ApprovalState.APPROVED, decided_by="cli:ops", decided_at=150.0, decision_reason="ok")
    rule = AllowRule("r1", "bot", "git", "push", {}, "api:alice", 160.0, "fine", "ab12cd34")
    events: list[object] = [
        ApprovalRequested(approval(), "call-1"),
        ApprovalDecided(decided, "cli"),
        ApprovalUsed(decided, "call-2"),
        AllowRuleApplied(rule, "call-3"),
        ApprovalExpired(approval(state=ApprovalState.EXPIRED)),
    ]
    for event in events:
        sink.record(event)

    rows = await stored(store)
    assert forward.events == events
    assert [r.type for r in rows] == [
        "approval.requested",
        "approval.decided",
        "approval.used",
        "approval.used",
        "approval.expired",
    ]
    requested, decision, used, by_rule, _ = rows
    assert (requested.agent, requested.server, requested.correlation_id, requested.tool) == (
        "bot",
        "git",
        "call-1",
        "push",
    )
    assert requested.details["rule"] == "policy:push"
    assert (
        decision.details.items() >= {"verdict": "allow", "decided_by": "cli:ops", "reason": "ok", "via": "cli"}.items()
    )
    assert decision.time == 150.0
    assert (used.correlation_id, used.details["allow_rule_id"]) == ("call-2", None)
    assert (by_rule.correlation_id, by_rule.details["allow_rule_id"], by_rule.details["decided_by"]) == (
        "call-3",
        "r1",
        "api:alice",
    )


async def test_an_undelivered_alert_is_audited_without_its_webhook_path_and_logged(store: AuditStore) -> None:
    log = ListEventSink()
    config = AlertsConfig.model_validate({"webhooks": [{"url": "https://hooks.slack.com/services/T0/B0/secretpath"}]})
    dispatcher = AlertDispatcher(config, log, Alerts().on(store))
    dispatcher.report_undelivered("https://hooks.slack.com/services/T0/B0/secretpath", "call_denied", 5, "HTTP 500")

    [failed] = await stored(store)
    assert failed.type == "alert.failed"
    assert failed.details["webhook"] == "https://hooks.slack.com", "a webhook's path may be a secret"
    assert "secretpath" not in str(failed.details)
    assert [type(e).__name__ for e in log.events] == ["AlertDeliveryFailed"], "the log line keeps the URL"


async def test_pin_events_are_audited_and_changes_alert(store: AuditStore) -> None:
    alerts, forward = Alerts(), Pins()
    sink = AuditedPinEvents(alerts.on(store), forward)
    events = [
        PinEvent("pinned", "git", "log", 1.0, hash="sha256:a"),
        PinEvent("changed", "git", "log", 2.0, hash="sha256:b", previous_hash="sha256:a", detail=("description",)),
        PinEvent("held", "git", "push", 3.0, hash="sha256:c", detail=("hidden-tag in description",)),
        PinEvent("accepted", "git", "log", 4.0, hash="sha256:b", previous_hash="sha256:a", actor="local:ops"),
        PinEvent("removed", "git", "push", 5.0, hash="sha256:c"),
        PinEvent("restored", "git", "push", 6.0, hash="sha256:c"),
    ]
    for event in events:
        await sink.emit(event)

    rows = await stored(store)
    assert forward.events == events
    assert [r.type for r in rows] == [
        "tool.pinned",
        "tool.changed",
        "tool.held",
        "tool.accepted",
        "tool.removed",
        "tool.restored",
    ]
    assert rows[1].details == {"tool": "log", "old_digest": "sha256:a", "new_digest": "sha256:b"}
    assert rows[2].details["findings"] == ["hidden-tag in description"]
    assert rows[3].details["accepted_by"] == "local:ops"
    assert [(a.kind, a.details["tool"], a.details["state"]) for a in alerts.raised] == [
        (AlertKind.TOOL_DEFINITION_CHANGED, "log", "changed"),
        (AlertKind.TOOL_DEFINITION_CHANGED, "push", "held"),
    ]
    changed, held = alerts.raised
    assert changed.details == {
        "server": "git",
        "tool": "log",
        "state": "changed",
        "digest": "sha256:b",
        "previous_digest": "sha256:a",
        "detail": ["description"],
    }, "the changed fields reach the alert, though the log does not record them"
    assert changed.summary == "tool git/log changed since it was pinned: bastion tools show git log"
    assert (held.details["previous_digest"], held.details["detail"]) == (None, ["hidden-tag in description"])
    assert held.summary == "tool git/push is held for review: bastion tools show git push"


async def test_runtime_events_are_audited_alerted_and_forwarded(store: AuditStore) -> None:
    alerts, forward = Alerts(), RecordingSink()
    sink = AuditedRuntimeEvents(alerts.on(store), forward)
    events: list[runtime.RuntimeEvent] = [
        runtime.ServerStarted("fetch", sandboxed=True, limits=(("memory", "512M"),), at=1.0),
        runtime.EgressAllowed("fetch", "docs.example", 443, "CONNECT", "127.0.0.1", 10, 20, at=2.0),
        runtime.EgressBlocked("fetch", "evil.example", 443, "CONNECT", "not on the allowlist", at=3.0),
        runtime.ServerExited("fetch", "exited with code 3", 3, at=4.0),
        runtime.ServerExited("fetch", "did not answer", None, at=4.5, remote=True),
        runtime.ServerRestarted("fetch", 1, 0.5, at=5.0),
        runtime.ServerGaveUp("fetch", 5, 60.0, reason="bwrap: execvp /tmp/x: No such file", at=6.0),
        runtime.SandboxDisabled("fetch", at=7.0),
    ]
    for event in events:
        sink.emit(event)

    rows = await stored(store)
    assert forward.events == events
    assert [r.type for r in rows] == [
        "server.started",
        "egress.allowed",
        "egress.blocked",
        "server.exited",
        "server.exited",
        "server.restarted",
        "server.gave_up",
        "server.unsandboxed",
    ]
    assert all(r.server == "fetch" for r in rows)
    assert rows[0].details["limits"] == {"memory": "512M"}
    assert rows[1].details.items() >= {"host": "docs.example", "address": "127.0.0.1", "bytes_out": 10}.items()
    assert rows[2].details["reason"] == "not on the allowlist"
    assert rows[3].details["exit_code"] == 3
    assert "remote" not in rows[4].details
    assert rows[6].details["reason"] == "bwrap: execvp /tmp/x: No such file"
    assert [a.kind for a in alerts.raised] == [
        AlertKind.EGRESS_BLOCKED,
        AlertKind.SERVER_CRASHED,
        AlertKind.SERVER_CRASHED,
        AlertKind.SERVER_RESTARTED,
        AlertKind.SERVER_CRASHED,
    ]
    blocked, exited, down = alerts.raised[:3]
    assert blocked.summary == (
        "server fetch tried to reach evil.example:443 with no call in flight: blocked (not on the allowlist)"
    )
    assert blocked.details["calls"] == []
    assert blocked.details["ambiguous"] is False
    assert exited.summary == "server fetch exited: exited with code 3"
    assert down.summary == "server fetch is down: did not answer"
    assert alerts.raised[-1].summary.endswith("(last: bwrap: execvp /tmp/x: No such file)")


async def test_a_store_that_cannot_take_an_event_raises_audit_store_failing_and_the_caller_carries_on(
    store: AuditStore,
) -> None:
    alerts, forward = Alerts(), RecordingSink()
    bus = alerts.on(store)
    await store.close()

    AuditedRuntimeEvents(bus, forward).emit(runtime.EgressBlocked("fetch", "evil.example", 443, "CONNECT", "no"))
    AuditedApprovalEvents(bus, ListEventSink()).record(ApprovalExpired(approval(state=ApprovalState.EXPIRED)))

    assert len(forward.events) == 1, "forwarded even though the audit write failed"
    failing = [a for a in alerts.raised if a.kind is AlertKind.AUDIT_STORE_FAILING]
    assert len(failing) == 2
    assert failing[0].coalesce_key == failing[1].coalesce_key, "a run of failures coalesces into one alert"
    assert [a.kind for a in alerts.raised].count(AlertKind.EGRESS_BLOCKED) == 1


def test_every_translated_kind_is_registered() -> None:
    kinds = {
        approval_audit_event(ApprovalExpired(approval())).type,  # type: ignore[union-attr]
        pin_audit_event(PinEvent("held", "s", "t", 1.0)).type,  # type: ignore[union-attr]
        runtime_audit_event(runtime.SandboxDisabled("s")).type,
    }
    assert kinds <= set(EVENT_TYPES)
