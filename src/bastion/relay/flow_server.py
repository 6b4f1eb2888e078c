"""What a front door hands its flows to (`FlowServer`): one server's `Relay`, or an aggregate
endpoint's `AggregateRelay`. Apart from `flow.py` so that the flow does not import its hooks."""

from __future__ import annotations

from typing import Any, Protocol

from bastion.relay.audit_hook import AuditHook
from bastion.relay.flow import Flow
from bastion.relay.jsonrpc import Notification


class FlowServer(Protocol):
    """What a front door hands its flows to: one server's `Relay`, or an aggregate endpoint's
    (`AggregateRelay`: `/mcp`, a virtual server)."""

    @property
    def name(self) -> str:
        """What the endpoint is called in logs and refusals (the server's name, or `/mcp`)."""

    @property
    def hot_methods(self) -> frozenset[str]:
        """The 2026-07-28 requests it serves (the rest go to the SDK's server, the reference)."""

    @property
    def audit(self) -> AuditHook: ...

    async def answer(self, flow: Flow) -> tuple[bytes, int | None]:
        """The encoded answer to `flow`'s request, and its JSON-RPC error code (None for a result)."""

    async def notified(self, flow_session: Any, notification: Notification) -> None:
        """A notification from the agent (cancellation, roots changed)."""
