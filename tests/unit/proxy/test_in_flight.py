"""Blocked egress tied to the calls in flight on the server (issue 13, item 2)."""

from __future__ import annotations

import pytest

from bastion.alerts.from_events import egress_alert
from bastion.audit import events as audit
from bastion.model import Decision, Verdict
from bastion.proxy.in_flight import MAX_BLOCKED_PER_CALL, InFlightCall, InFlightCalls
from bastion.proxy.recording import CallState
from bastion.runtime.audit_events import runtime_audit_event
from bastion.runtime.events import EgressBlocked

BLOCKED = EgressBlocked("fetch", "evil.example", 443, "CONNECT", "evil.example is not on the allowlist")


@pytest.mark.parametrize(
    ("calls", "agent", "correlation_id", "tool", "ambiguous"),
    [
        ([], None, None, None, False),
        ([("c1", "alice", "fetch")], "alice", "c1", "fetch", False),
        ([("c1", "alice", "fetch"), ("c2", "alice", "fetch")], "alice", None, "fetch", True),
        ([("c1", "alice", "fetch"), ("c2", "bob", "get")], None, None, None, True),
    ],
)
def test_a_block_names_the_calls_in_flight_and_says_when_it_is_ambiguous(
    calls: list[tuple[str, str, str]], agent: str | None, correlation_id: str | None, tool: str | None, ambiguous: bool
) -> None:
    registry = InFlightCalls()
    flights = [InFlightCall(call_id, who, "fetch", name) for call_id, who, name in calls]
    other = InFlightCall("elsewhere", "carol", "git", "log")
    for flight in [*flights, other]:
        registry.begin(flight)
    during = registry.attribute("fetch", "evil.example:443")
    event = runtime_audit_event(BLOCKED, during)
    assert isinstance(event, audit.EgressBlocked)
    assert (event.agent, event.correlation_id, event.tool, event.ambiguous) == (agent, correlation_id, tool, ambiguous)
    assert event.calls == ([f.as_dict() for f in flights] if ambiguous else None)
    assert all(flight.egress_blocked == ["evil.example:443"] for flight in flights)
    assert other.egress_blocked == [], "a call on another server is not blamed"
    alert = egress_alert(event)
    assert alert.details["ambiguous"] is ambiguous
    assert len(alert.details["calls"]) == len(calls)
    for flight in [*flights, other]:
        registry.end(flight)
    assert len(registry) == 0


def test_the_hosts_noted_on_one_call_are_bounded() -> None:
    registry = InFlightCalls()
    flight = InFlightCall("c1", "alice", "fetch", "fetch")
    registry.begin(flight)
    for n in range(MAX_BLOCKED_PER_CALL * 3):
        registry.attribute("fetch", f"host{n}.example:443")
        registry.attribute("fetch", "host0.example:443")
    assert len(flight.egress_blocked) == MAX_BLOCKED_PER_CALL


@pytest.mark.parametrize(("decision", "in_flight"), [(Decision.ALLOW, 1), (Decision.DENY, 0), (Decision.ASK, 0)])
def test_a_tool_call_is_in_flight_only_once_the_guard_lets_it_through(decision: Decision, in_flight: int) -> None:
    """A call held for approval (or denied) has not reached the server: a block then is not its doing."""
    registry = InFlightCalls()
    state = CallState("c1", None, None, flight=InFlightCall("c1", "alice", "fetch", "fetch"), in_flight=registry)
    assert len(registry) == 0
    state.decide(Verdict(decision))
    assert len(registry) == in_flight
