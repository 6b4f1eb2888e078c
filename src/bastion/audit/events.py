"""The audit events: one frozen dataclass per kind of thing that happened.

Every event has a `time` (Unix seconds), the `agent` and `server` it concerns (when it
concerns one) and a `correlation_id` tying a call's events together (the call id). The
store gives it a sequence number and a hash chained to the previous event when it is
written; read back, an event comes with both (`StoredEvent`).

To record an event from anywhere in Bastion::

    from bastion.audit.events import ToolChanged
    await store.record(ToolChanged(server="git", tool="log", old_digest=a, new_digest=b))
    store.record_nowait(ServerRestarted(server="git", attempt=2))  # group-committed, no wait

`type` (a class attribute) names the kind in the log, e.g. `"tool.changed"`. Payload
fields (`PAYLOAD_FIELDS`: tool arguments and results) are stored according to
`audit.mode` (full, redacted or shape); every other field is stored as is, but for the few
marked `bus_only()`: context the event bus's subscribers (alerts) read, never recorded.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


def _now() -> float:
    return time.time()


_BUS_ONLY = "bus_only"


def bus_only(default: Any) -> Any:
    """A field the bus's subscribers see (alerts) that the audit log does not record, nor compare."""
    return field(default=default, compare=False, metadata={_BUS_ONLY: True})


def _recorded(f: dataclasses.Field[Any]) -> bool:
    return f.name not in COMMON_FIELDS and not f.metadata.get(_BUS_ONLY, False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """What every event carries. Subclasses add their own fields; all are keyword-only."""

    type: ClassVar[str] = ""
    PAYLOAD_FIELDS: ClassVar[tuple[str, ...]] = ()
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ()
    """Optional fields left out of `details()` while unset (older records never had them)."""

    time: float = field(default_factory=_now)
    agent: str | None = None
    server: str | None = None
    correlation_id: str | None = None

    def details(self) -> dict[str, Any]:
        """The fields particular to this kind of event, by name."""
        read = _DETAIL_READERS.get(type(self))
        if read is None:
            names = tuple(f.name for f in dataclasses.fields(self) if _recorded(f))
            read = _DETAIL_READERS[type(self)] = _reader(names)
        details = read(self)
        for name in self.OMITTED_WHEN_NONE:
            if details.get(name, 0) is None:
                del details[name]
        return details


def _reader(names: tuple[str, ...]) -> Callable[[AuditEvent], dict[str, Any]]:
    """What `details` builds for a class recording `names`: one `attrgetter` call reads them all."""
    if not names:
        return lambda event: {}
    if len(names) == 1:
        name = names[0]
        return lambda event: {name: getattr(event, name)}
    values = operator.attrgetter(*names)
    return lambda event: dict(zip(names, values(event), strict=True))


_DETAIL_READERS: dict[type, Callable[[AuditEvent], dict[str, Any]]] = {}


COMMON_FIELDS = ("time", "agent", "server", "correlation_id")


# Calls


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequested(AuditEvent):
    """An agent's request, recorded before anything is done with it (write-ahead for `tools/call`)."""

    type: ClassVar[str] = "call.requested"
    PAYLOAD_FIELDS: ClassVar[tuple[str, ...]] = ("arguments",)
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("trace_id", "endpoint")
    method: str
    tool: str | None = None
    arguments: Any = None
    transport: str = ""
    trace_id: str | None = None
    """The OpenTelemetry trace of the request, when tracing is on (finds the trace from the audit log)."""
    endpoint: str | None = None
    """`aggregate` (through `/mcp`) or `virtual:<name>`; unset for a server's own endpoint."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictReached(AuditEvent):
    """What the guard pipeline decided about a tool call, and which check (or rule) decided."""

    type: ClassVar[str] = "call.verdict"
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("source_call",)
    tool: str | None = None
    verdict: str
    """`allow`, `deny` or `ask`."""
    rule: str | None = None
    reason: str = ""
    log: bool = False
    """The deciding rule marked the call for attention without blocking it."""
    approval_id: str | None = None
    """The approval that admitted a held call (see `CallCompleted.approval_id`)."""
    allow_rule_id: str | None = None
    """The always-allow rule that admitted a held call."""
    source_call: str | None = None
    """Provenance: the correlation id of the (untrusted or flagged) result the call's argument value
    came from; the call page links to it. Unset in older records and for other verdicts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCompleted(AuditEvent):
    """How a request ended: `outcome` is `allowed`, `denied` or `error`."""

    type: ClassVar[str] = "call.completed"
    PAYLOAD_FIELDS: ClassVar[tuple[str, ...]] = ("result",)
    OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ("endpoint",)
    method: str
    tool: str | None = None
    outcome: str
    latency_ms: float
    is_error: bool | None = None
    result_size: int | None = None
    result: Any = None
    error: str | None = None
    rule: str | None = None
    """The check (or policy rule) that decided the call, when one did."""
    log: bool = False
    """The deciding rule marked the call for attention (a policy rule's `log: true`, audit-only)."""
    approval_id: str | None = None
    """The approval that admitted the call: approved while it waited, or its retry after approval
    (for an always-allow rule, the approval the rule was recorded with)."""
    allow_rule_id: str | None = None
    """The always-allow rule that admitted the call."""
    egress_blocked: list[str] | None = None
    """`host:port` of each connection the server's egress proxy refused while the call ran."""
    endpoint: str | None = None
    """As in `call.requested`: `aggregate` or `virtual:<name>` when the call came through one."""


# Approvals


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested(AuditEvent):
    type: ClassVar[str] = "approval.requested"
    approval_id: str
    tool: str | None = None
    reason: str = ""
    rule: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalDecided(AuditEvent):
    type: ClassVar[str] = "approval.decided"
    approval_id: str
    verdict: str
    """`allow` or `deny`."""
    decided_by: str
    tool: str | None = None
    reason: str = ""
    always: bool = False
    """An always-allow rule for identical calls was recorded with the decision."""
    via: str = ""
    """`cli`, `api` or `dashboard`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalExpired(AuditEvent):
    type: ClassVar[str] = "approval.expired"
    approval_id: str
    tool: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalUsed(AuditEvent):
    """A held call (`correlation_id`) was let through by an approval, or by an always-allow rule (`allow_rule_id`)."""

    type: ClassVar[str] = "approval.used"
    approval_id: str
    tool: str | None = None
    decided_by: str = ""
    allow_rule_id: str | None = None


# Alerts


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFailed(AuditEvent):
    """An alert could not be delivered after every retry. `webhook` is the origin only (a URL path may be a secret)."""

    type: ClassVar[str] = "alert.failed"
    kind: str
    webhook: str
    attempts: int
    error: str = ""


# Front door


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed(AuditEvent):
    """A request refused at the front door: no, bad, revoked or expired credential, or no access.

    Coalesced under floods like `RequestRefused` (per status, reason and agent, per minute)."""

    type: ClassVar[str] = "auth.failure"
    reason: str
    status: int = 401
    path: str = ""
    client: str | None = None
    """The remote address, when known."""
    count: int = 1
    coalesced: bool = False
    window_start: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRefused(AuditEvent):
    """A request refused at the front door before the guard: malformed, too large, a batch, a call
    sent as a notification, an unknown or foreign session, an id already in flight.

    Coalesced under floods: the first refusal for a `reason` in a minute is recorded as it
    happens (`count` 1); the rest of that minute are one more event, `coalesced` true, with
    their `count` (its `agent` and `client`: the last one's).
    """

    type: ClassVar[str] = "request.refused"
    reason: str
    """One of a fixed set (`parse_error`, `body_too_large`, `batch`, `call_as_notification`,
    `unknown_session`, `duplicate_id`, `invalid_message`, `http_<status>`)."""
    status: int
    path: str = ""
    client: str | None = None
    """The remote address, when known."""
    detail: str = ""
    count: int = 1
    coalesced: bool = False
    window_start: float | None = None
    """The minute (Unix seconds) a coalesced count is for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimited(AuditEvent):
    """A call refused by a limit (`limit` names it: `per_agent 60/minute`, `concurrent_per_agent 8`, ...)."""

    type: ClassVar[str] = "rate.limited"
    tool: str | None = None
    limit: str = ""
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitStorageFailing(AuditEvent):
    """The shared rate-limit storage (Redis) cannot be reached; `limits.on_storage_failure` applies."""

    type: ClassVar[str] = "rate.storage_failing"
    storage: str
    """Its URL, without a password."""
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitStorageRecovered(AuditEvent):
    type: ClassVar[str] = "rate.storage_recovered"
    storage: str
    down_for_s: float | None = None


# Egress


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressAllowed(AuditEvent):
    type: ClassVar[str] = "egress.allowed"
    host: str
    port: int | None = None
    method: str = ""
    address: str = ""
    """The address the name resolved to and was connected to."""
    bytes_out: int | None = None
    bytes_in: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressBlocked(AuditEvent):
    """A connection the egress proxy refused, tied to the call(s) in flight on the server then.

    `agent` and `correlation_id` are the call's; with several calls in flight, `ambiguous` is
    true, `calls` lists each, and `agent` (or `tool`) is kept only when they all share it.
    """

    type: ClassVar[str] = "egress.blocked"
    host: str
    port: int | None = None
    method: str = ""
    reason: str = ""
    tool: str | None = None
    ambiguous: bool = False
    calls: list[dict[str, str | None]] | None = None
    in_flight: tuple[dict[str, str | None], ...] = bus_only(())
    """Every call in flight then (one too), for the `egress_blocked` alert."""


# Server lifecycle


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStarted(AuditEvent):
    type: ClassVar[str] = "server.started"
    pid: int | None = None
    command: str = ""
    sandboxed: bool | None = None
    limits: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerExited(AuditEvent):
    type: ClassVar[str] = "server.exited"
    exit_code: int | None = None
    reason: str = ""
    remote: bool = bus_only(False)
    """A server Bastion reaches but does not run (HTTP) went down, rather than a process exiting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRestarted(AuditEvent):
    type: ClassVar[str] = "server.restarted"
    attempt: int = 1
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerGaveUp(AuditEvent):
    """The crash-loop limit was reached: the server is no longer restarted."""

    type: ClassVar[str] = "server.gave_up"
    restarts: int
    window_seconds: float
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxDisabled(AuditEvent):
    """The server runs without a sandbox because its configuration says `sandbox: off`."""

    type: ClassVar[str] = "server.unsandboxed"


# Tool pinning


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolPinned(AuditEvent):
    type: ClassVar[str] = "tool.pinned"
    tool: str
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChanged(AuditEvent):
    type: ClassVar[str] = "tool.changed"
    tool: str
    old_digest: str
    new_digest: str
    changes: tuple[str, ...] = bus_only(())
    """The fields that changed, then the scanner's findings (for the `tool_definition_changed` alert)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolAccepted(AuditEvent):
    type: ClassVar[str] = "tool.accepted"
    tool: str
    digest: str
    accepted_by: str = ""
    previous_digest: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolHeld(AuditEvent):
    """A tool definition the scanner flagged (`findings`) is held for review: hidden and blocked."""

    type: ClassVar[str] = "tool.held"
    tool: str
    digest: str
    findings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolRemoved(AuditEvent):
    type: ClassVar[str] = "tool.removed"
    tool: str
    digest: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolRestored(AuditEvent):
    """A removed tool is declared again (with its pinned definition)."""

    type: ClassVar[str] = "tool.restored"
    tool: str
    digest: str | None = None


# Results


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultFlagged(AuditEvent):
    """A result a result check flagged (injection found, over a threshold), and what Bastion did with it.

    `findings` name the detector and the span (`framing in content[0].text[0:13]: ...`);
    `tainted` counts the values it carried that later calls are checked for (provenance).
    """

    type: ClassVar[str] = "result.flagged"
    method: str = "tools/call"
    tool: str | None = None
    action: str
    """`log`, `sanitize`, `ask` or `deny`."""
    detectors: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    tainted: int = 0


# Tokens and configuration


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenCreated(AuditEvent):
    """`agent` is the token's agent. The secret is never recorded, only its id."""

    type: ClassVar[str] = "token.created"
    token_id: str
    servers: tuple[str, ...] | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRevoked(AuditEvent):
    type: ClassVar[str] = "token.revoked"
    token_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigLoaded(AuditEvent):
    """A gateway started with this configuration file (`digest`: SHA-256 of its bytes)."""

    type: ClassVar[str] = "config.loaded"
    source: str
    digest: str
    servers: tuple[str, ...] = ()


# The log itself


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditPruned(AuditEvent):
    """Retention removed every event up to `through_seq`; the chain resumes from `through_hash`."""

    type: ClassVar[str] = "audit.pruned"
    through_seq: int
    through_hash: str
    removed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingRejected(AuditEvent):
    """A write-ahead record waiting to be chained (`audit_pending`) did not carry the audit key's
    seal when it was chained: it was changed, or written, outside Bastion. What was found is
    kept here (`found_type`, `found`: its event type and stored details), not as the event it claims to be."""

    type: ClassVar[str] = "audit.pending_rejected"
    found_type: str
    found: str
    reason: str


EVENT_TYPES: dict[str, type[AuditEvent]] = {
    cls.type: cls
    for cls in (
        CallRequested,
        VerdictReached,
        CallCompleted,
        ApprovalRequested,
        ApprovalDecided,
        ApprovalExpired,
        ApprovalUsed,
        AlertFailed,
        AuthFailed,
        RequestRefused,
        RateLimited,
        RateLimitStorageFailing,
        RateLimitStorageRecovered,
        EgressAllowed,
        EgressBlocked,
        ServerStarted,
        ServerExited,
        ServerRestarted,
        ServerGaveUp,
        SandboxDisabled,
        ToolPinned,
        ToolChanged,
        ToolAccepted,
        ToolHeld,
        ToolRemoved,
        ToolRestored,
        ResultFlagged,
        TokenCreated,
        TokenRevoked,
        ConfigLoaded,
        AuditPruned,
        PendingRejected,
    )
}
"""Every event kind by its `type` name."""

DETAIL_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f.name for cls in EVENT_TYPES.values() for f in dataclasses.fields(cls) if _recorded(f))
)
"""Every field name any event kind adds, in a stable order (the CSV export's columns)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the store: its place in the chain and its recorded fields.

    `details` holds the event's own fields as stored (payloads already redacted per the
    mode in force when it was written).
    """

    seq: int
    time: float
    type: str
    agent: str | None
    server: str | None
    correlation_id: str | None
    details: dict[str, Any]
    hash: str

    @property
    def tool(self) -> str | None:
        tool = self.details.get("tool")
        return tool if isinstance(tool, str) else None
