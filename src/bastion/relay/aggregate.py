"""The relay for an aggregate endpoint: `/mcp` (every server the caller reaches) or a virtual server.

Its upstream is "every server the principal may use". Each request is routed first
(`AggregateServer.route`: the exposed tool or prompt name, the resource URI), so its audit
record names the real server and tool, as the SDK path's recorder does; it is then served
by the `AggregateServer`'s own handlers (the same code the SDK path runs): lists gathered
from each reachable server and renamed by its catalogue, a `tools/call` handed to the real
server's `ProxyServer.call_tool` (guard pipeline, approvals, result checks), an unroutable
name refused with the reason. Progress, cancellation and server-to-client requests travel
on the flow's channel, as at a server's own endpoint; list-changed notices reach the
sessions that joined the aggregate's hub (`gateway.list_changes`).
"""

from __future__ import annotations

import logging
from typing import Any

from bastion.proxy.aggregate import AggregateServer
from bastion.relay import era, jsonrpc
from bastion.relay.audit_hook import AuditHook
from bastion.relay.flow import Flow
from bastion.relay.params import CHECKS as SPEC_PARAMS
from bastion.relay.params import invalid_params, params_ok
from bastion.relay.relay import dumped, encoded_answer, for_era, handshake

logger = logging.getLogger(__name__)


class AggregateRelay:
    """Serves the requests of one aggregate endpoint through its `AggregateServer`."""

    def __init__(self, aggregate: AggregateServer) -> None:
        self.aggregate = aggregate
        self.audit = AuditHook(aggregate.recorder)
        self.hot_methods = frozenset(aggregate.handlers)
        """What it serves in the 2026-07-28 era; every other request goes to the SDK's server, as there."""

    @property
    def name(self) -> str:
        return self.aggregate.served_name

    async def answer(self, flow: Flow) -> tuple[bytes, int | None]:
        """The encoded JSON-RPC answer to `flow`'s request, and its error code (None for a result)."""
        return await encoded_answer(flow, self._serve)

    async def _serve(self, flow: Flow) -> dict[str, Any]:
        method = flow.method
        if method == "ping":
            era.refuse_undefined(flow)  # the 2026-07-28 era has no `ping`
            return {}
        aggregate = self.aggregate
        principal = flow.principal = aggregate.widened(flow.principal)
        params = flow.params or {}
        target = await aggregate.route(method, params, principal)  # before the record: it names the real server
        flow.server = target.server or self.name
        flow.tool = target.tool if method == "tools/call" else None
        return await self.audit.around(flow, target, aggregate.hub, aggregate.endpoint, lambda: self._dispatch(flow))

    async def _dispatch(self, flow: Flow) -> dict[str, Any]:
        method = flow.method
        era.refuse_undefined(flow)
        if method == "initialize":
            return await handshake(flow, self.aggregate)
        if method == era.DISCOVER and era.is_modern(flow):
            return for_era(flow, method, await era.discover(flow, self.aggregate), self.aggregate)
        if method in SPEC_PARAMS and not params_ok(method, flow.params):
            # As the SDK's server: a spec request's params are checked before it looks for a handler.
            raise invalid_params(method)
        handler = self.aggregate.handlers.get(method)
        if handler is None:
            era.refuse_unserved(flow)
        era.refuse_before_handshake(flow)
        result = dumped(await handler(flow, None))
        return for_era(flow, method, result, self.aggregate)

    async def notified(self, flow_session: Any, notification: jsonrpc.Notification) -> None:
        """A notification from the agent on a handshake-era session: cancellation (the aggregate
        has no roots of its own to pass on)."""
        if notification.method == "notifications/cancelled":
            flow_session.cancel((notification.params or {}).get("requestId"))
