"""Every event kind is a frozen dataclass with a unique type, and the registry knows them all."""

from __future__ import annotations

import dataclasses

import pytest

from bastion.audit import events
from bastion.audit.events import COMMON_FIELDS, DETAIL_FIELDS, EVENT_TYPES, AuditEvent, CallRequested

ISSUE_KINDS = {
    "call.requested", "call.verdict", "call.completed", "approval.requested", "approval.decided",
    "approval.expired", "auth.failure", "rate.limited", "egress.allowed", "egress.blocked", "server.started",
    "server.exited", "server.restarted", "tool.pinned", "tool.changed", "tool.accepted", "token.created",
    "token.revoked", "config.loaded",
}  # fmt: skip


def test_every_kind_the_issue_names_exists() -> None:
    assert set(EVENT_TYPES) >= ISSUE_KINDS


def test_every_event_class_is_registered_under_its_own_type() -> None:
    classes = [c for c in vars(events).values() if isinstance(c, type) and issubclass(c, AuditEvent) and c.type]

    assert sorted(c.type for c in classes) == sorted(EVENT_TYPES)
    assert all(EVENT_TYPES[c.type] is c for c in classes)


@pytest.mark.parametrize("cls", EVENT_TYPES.values(), ids=list(EVENT_TYPES))
def test_events_are_frozen_and_carry_the_common_fields(cls: type[AuditEvent]) -> None:
    names = [f.name for f in dataclasses.fields(cls)]

    assert names[: len(COMMON_FIELDS)] == list(COMMON_FIELDS)
    assert set(cls.PAYLOAD_FIELDS) <= set(names)
    recorded = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("bus_only")}
    assert recorded - set(COMMON_FIELDS) <= set(DETAIL_FIELDS)
    assert not set(names) - recorded & set(DETAIL_FIELDS), "what only the bus carries is never recorded"
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_details_are_the_kind_specific_fields() -> None:
    event = CallRequested(agent="a", server="s", correlation_id="c", method="tools/call", tool="t", arguments={"x": 1})

    assert event.details() == {"method": "tools/call", "tool": "t", "arguments": {"x": 1}, "transport": ""}
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.tool = "other"  # type: ignore[misc]
    traced = dataclasses.replace(event, trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    assert traced.details()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("cls", EVENT_TYPES.values(), ids=list(EVENT_TYPES))
def test_details_read_every_recorded_field_in_order(cls: type[AuditEvent]) -> None:
    """`details` (one `attrgetter` per class) is each recorded field's value, by name, in the class's order."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    event = cls(**{f.name: f"value of {f.name}" for f in fields})
    recorded = [f.name for f in fields if f.name not in COMMON_FIELDS and not f.metadata.get("bus_only")]

    assert list(event.details().items()) == [(name, f"value of {name}") for name in recorded]
    if cls.OMITTED_WHEN_NONE:
        unset = cls(**{f.name: None if f.name in cls.OMITTED_WHEN_NONE else "x" for f in fields})
        assert not set(unset.details()) & set(cls.OMITTED_WHEN_NONE)
