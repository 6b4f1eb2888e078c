"""Which result a held call's value came from, read from the call's audit events (web/chain.py):
the verdict's `source_call`, or in records written before that field, the reason's `(call <id>)`."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.audit.events import StoredEvent
from bastion.web.chain import source_call_of

REASON = (
    "argument value 'US13' first appeared in a result of mail.read_inbox flagged as injection (framing) (call ab12)"
)


def event(kind: str, **details: Any) -> StoredEvent:
    return StoredEvent(1, 0.0, kind, "bot", "mail", "c1", details, "")


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([event("call.verdict", verdict="ask", rule="approval", reason="queued", source_call="ab12")], "ab12"),
        ([event("call.verdict", verdict="deny", rule="provenance", reason=REASON)], "ab12"),  # older, denied
        (  # older, held: the approval request carries provenance's own reason
            [
                event("approval.requested", rule="provenance", reason=REASON),
                event(
                    "call.verdict", verdict="deny", rule="approval", reason=f"queued as approval x ({REASON}). Retry"
                ),
            ],
            "ab12",
        ),
        ([event("call.verdict", verdict="deny", rule="policy/rule:x", reason="(call ab12)")], None),
        ([event("call.verdict", verdict="allow", rule="policy/profile:recommended")], None),
        ([], None),
    ],
    ids=["field", "older-denied", "older-held", "other-rule", "allowed", "no-events"],
)
def test_the_source_of_a_held_call(events: list[StoredEvent], expected: str | None) -> None:
    assert source_call_of(events) == expected
