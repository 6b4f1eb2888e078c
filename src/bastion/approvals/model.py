"""What an approval is: a held call, its state, and the rules "always allow" records."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ApprovalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Approval:
    """A call held for a person's decision. Times are Unix seconds."""

    id: str
    agent: str
    server: str
    tool: str
    arguments: Mapping[str, Any]
    rule: str
    """The check or policy rule that asked (`Verdict.check`)."""
    reason: str
    created_at: float
    expires_at: float
    state: ApprovalState = ApprovalState.PENDING
    decided_by: str | None = None
    decided_at: float | None = None
    decision_reason: str | None = None
    always: bool = False
    consumed_at: float | None = None
    """When an approved call was let through (each approval admits one call)."""

    @property
    def fingerprint(self) -> str:
        return call_fingerprint(self.agent, self.server, self.tool, self.arguments)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as the CLI and the admin API show it."""
        return {
            "id": self.id,
            "agent": self.agent,
            "server": self.server,
            "tool": self.tool,
            "arguments": dict(self.arguments),
            "rule": self.rule,
            "reason": self.reason,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "state": self.state.value,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "decision_reason": self.decision_reason,
            "always": self.always,
            "consumed_at": self.consumed_at,
        }


@dataclass(frozen=True, slots=True)
class AllowRule:
    """An "always allow" decision: calls by `agent` to `server`/`tool` with exactly these arguments pass.

    The argument pattern is the canonical JSON of the approved call's arguments: it matches
    calls whose arguments are equal to it (key order and whitespace do not matter).
    """

    id: str
    agent: str
    server: str
    tool: str
    arguments: Mapping[str, Any]
    created_by: str
    created_at: float
    reason: str
    approval_id: str


def canonical_arguments(arguments: Mapping[str, Any]) -> str:
    """Arguments as canonical JSON: sorted keys, no spaces, so equal arguments give equal text."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def call_fingerprint(agent: str, server: str, tool: str, arguments: Mapping[str, Any]) -> str:
    """What makes two calls "the same call": agent, server, tool and canonical arguments."""
    text = json.dumps([agent, server, tool, canonical_arguments(arguments)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ApprovalError(Exception):
    """A decision that cannot be made: unknown id, already decided, or expired."""
