"""Values shared by every room of Bastion: who is calling, what they call, what was decided.

Frozen dataclasses only; this module imports nothing of ours.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated agent.

    `servers` is the set of upstream names the agent may reach, or `None` for all of them.
    `credential_id` identifies the credential (token id or JWT subject) for session binding.
    """

    agent: str
    servers: frozenset[str] | None = None
    via: str = "token"
    credential_id: str = ""

    def may_reach(self, server: str) -> bool:
        return self.servers is None or server in self.servers


LOCAL_PRINCIPAL_VIA = "local"
"""`via` of the principal `bastion wrap` uses: the user who launched it, on stdio."""


class Decision(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a guard check decided, and why. `check` names the check (or rule) that decided.

    `log` marks the call for attention without blocking it (a rule's `log: true`, the
    `audit-only` profile); it is kept in the audit record.
    """

    decision: Decision
    reason: str = ""
    check: str = ""
    log: bool = False
    approval_id: str | None = None
    """The approval that admitted the call (approved while it waited, or its retry)."""
    allow_rule_id: str | None = None
    """The always-allow rule that admitted the call."""
    source_call: str | None = None
    """The correlation id of the result an argument value came from, when provenance held or denied the call."""

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


ALLOW = Verdict(Decision.ALLOW)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A `tools/call` request as the guard pipeline sees it."""

    call_id: str
    principal: Principal
    server: str
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    definition: Mapping[str, Any] | None = None
    """The tool as the upstream declared it in its tool list (name, description, inputSchema,
    annotations), or `None` when the upstream does not list it. Never taken from the request."""
    session: str | None = None
    """The agent's MCP session the call came in on (`http:<Mcp-Session-Id>`, `sse:<id>`, `conn:<id>`
    for stdio), or `None` where there is none (the stateless 2026 era)."""


class Outcome(enum.StrEnum):
    """How a request ended, as recorded in the audit log."""

    PENDING = "pending"
    """Recorded before forwarding; not yet answered (a crash leaves it so)."""
    ALLOWED = "allowed"
    DENIED = "denied"
    ERROR = "error"
