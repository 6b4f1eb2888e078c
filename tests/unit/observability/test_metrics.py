"""The metrics' own rules: outcome names, bounded labels, and a bus that never fails a record."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bastion.audit.bus import EventBus
from bastion.audit.events import AuditEvent, CallCompleted, EgressBlocked, VerdictReached
from bastion.observability.metrics import MAX_TOOLS_PER_SERVER, OTHER, GatewayMetrics
from bastion.observability.outcomes import CallOutcomes

QUEUED = "queued for human review as approval a1 (rule x)"


def completed(call: str, outcome: str, **fields: Any) -> CallCompleted:
    return CallCompleted(
        correlation_id=call, server="db", method="tools/call", tool="query", outcome=outcome, latency_ms=3.0, **fields
    )


def verdict(call: str, verdict: str, rule: str, reason: str = "") -> VerdictReached:
    return VerdictReached(correlation_id=call, server="db", tool="query", verdict=verdict, rule=rule, reason=reason)


@pytest.mark.parametrize(
    ("seen", "done", "expected"),
    [
        (verdict("c", "allow", "policy"), completed("c", "allowed", is_error=False), "allowed"),
        (verdict("c", "allow", "policy"), completed("c", "allowed", is_error=True), "failed"),
        (verdict("c", "allow", "policy"), completed("c", "error"), "failed"),
        (verdict("c", "deny", "policy/rule:x"), completed("c", "denied", rule="policy/rule:x"), "denied"),
        (verdict("c", "deny", "rate-limit"), completed("c", "denied", rule="rate-limit"), "rate_limited"),
        (verdict("c", "deny", "approval", QUEUED), completed("c", "denied", rule="approval"), "held"),
        (verdict("c", "deny", "approval", "a person denied it"), completed("c", "denied", rule="approval"), "denied"),
        (verdict("c", "allow", "approval"), completed("c", "allowed", approval_id="a1"), "approved"),
        (verdict("c", "allow", "approval"), completed("c", "allowed", allow_rule_id="r1"), "approved"),
        (verdict("other", "deny", "approval", QUEUED), completed("c", "denied", rule="approval"), "denied"),
    ],
)
def test_outcomes(seen: VerdictReached, done: CallCompleted, expected: str) -> None:
    outcomes = CallOutcomes()
    outcomes.saw_verdict(seen)
    assert outcomes.outcome(done) == expected


def test_held_calls_are_forgotten_oldest_first() -> None:
    outcomes = CallOutcomes(remembered=2)
    for call in ("a", "b", "c"):
        outcomes.saw_verdict(verdict(call, "deny", "approval", QUEUED))
    assert outcomes.outcome(completed("a", "denied", rule="approval")) == "denied"
    assert outcomes.outcome(completed("c", "denied", rule="approval")) == "held"


def scrape(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_made_up_tool_names_cannot_grow_the_series_without_end() -> None:
    metrics = GatewayMetrics(["db"])
    for n in range(MAX_TOOLS_PER_SERVER + 50):
        event = CallCompleted(server="db", method="tools/call", tool=f"t{n}", outcome="allowed", latency_ms=1.0)
        metrics.observe(event)
    found = scrape(metrics)
    tools = {dict(labels)["tool"] for name, labels in found if name == "bastion_tool_calls_total"}
    assert len(tools) == MAX_TOOLS_PER_SERVER + 1
    assert found[("bastion_tool_calls_total", (("outcome", "allowed"), ("server", "db"), ("tool", OTHER)))] == 50


def test_unknown_servers_and_agents_stay_out_of_labels() -> None:
    metrics = GatewayMetrics(["db"])
    metrics.observe(
        CallCompleted(server="nope", agent="mallory", method="tools/call", tool="x", outcome="allowed", latency_ms=1.0)
    )
    metrics.observe(EgressBlocked(server="db", host="evil.example"))
    text = generate_latest(metrics.registry).decode()
    assert "nope" not in text
    assert "mallory" not in text
    assert "evil.example" not in text
    assert scrape(metrics)[("bastion_egress_blocked_total", (("server", "db"),))] == 1


def test_per_agent_labels_when_asked() -> None:
    metrics = GatewayMetrics(["db"], per_agent=True)
    metrics.observe(
        CallCompleted(server="db", agent="ops", method="tools/call", tool="x", outcome="allowed", latency_ms=1.0)
    )
    key = ("bastion_tool_calls_total", (("agent", "ops"), ("outcome", "allowed"), ("server", "db"), ("tool", "x")))
    assert scrape(metrics)[key] == 1


def test_non_tool_requests_are_not_tool_calls() -> None:
    metrics = GatewayMetrics(["db"])
    metrics.observe(CallCompleted(server="db", method="tools/list", outcome="allowed", latency_ms=1.0))
    assert not [k for k in scrape(metrics) if k[0] == "bastion_tool_calls_total"]
    assert scrape(metrics)[("bastion_audit_events_total", ())] == 1


class _Store:
    def __init__(self) -> None:
        self.recorded: list[AuditEvent] = []

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        self.recorded.append(event)

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> None:
        await self.record(event, alone=alone)

    def record_nowait(self, event: AuditEvent) -> None:
        self.recorded.append(event)


class _Broken:
    def observe(self, event: AuditEvent) -> None:
        raise RuntimeError("boom")

    def observe_write(self, seconds: float) -> None:
        raise RuntimeError("boom")


@pytest.mark.anyio
async def test_a_failing_subscriber_never_fails_the_record() -> None:
    store = _Store()
    metrics = GatewayMetrics(["db"])
    observed = EventBus(store, [_Broken(), metrics])  # type: ignore[arg-type]
    event = CallCompleted(server="db", method="tools/call", tool="x", outcome="allowed", latency_ms=1.0)
    await observed.record(event)
    observed.record_nowait(event)
    assert store.recorded == [event, event]
    assert scrape(metrics)[("bastion_audit_events_total", ())] == 2
    assert scrape(metrics)[("bastion_audit_write_seconds_count", ())] == 1
