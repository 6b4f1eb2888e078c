"""The audit hook: the outermost observer of every flow.

It opens the request's audit record when the flow is `requested` (durably, before any
other hook or check, for a `tools/call`; refusing the request when the store cannot
write and `audit.on_failure` says so), and closes it when the flow is `completed`
(`call.completed`: outcome, verdict, latency, result size). The verdict (`decided`) is
recorded as the guard reaches it (`call.verdict`). The records, fields and messages are
those of the SDK path's recorder (`CallRecorder`): it is the same code.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bastion.proxy.downstream import DownstreamHub
from bastion.proxy.recording import CallRecorder, OpenCall, RecordedRequest, Target
from bastion.relay.flow import Flow


class AuditHook:
    """Records each flow through `recorder`; only observes."""

    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder

    async def requested(self, flow: Flow, request: RecordedRequest) -> OpenCall:
        """Write the `call.requested` record (may raise `RpcError`: fail closed)."""
        opened = await self.recorder.open(request)
        flow.record = opened
        return opened

    async def observe(self, flow: Flow, opened: OpenCall, run: Callable[[], Awaitable[Any]]) -> Any:
        """Run the rest of the flow (decided, forwarded) and record how it completed."""
        try:
            return await self.recorder.observe(opened, run)
        finally:
            flow.verdict = opened.state.verdict
            flow.timings.completed = time.perf_counter()

    async def around(
        self,
        flow: Flow,
        target: Target,
        hub: DownstreamHub,
        endpoint: str | None,
        run: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """`flow`'s request recorded write-ahead (routed to `target`; the agent's session joined
        on `hub`, for what the server sends back), then `run` observed until it completes."""
        session = flow.session.session
        agent = hub.join(session, flow.principal, flow.session) if session is not None else None
        request = RecordedRequest(
            principal=flow.principal,
            method=flow.method,
            params=flow.params or {},
            target=target,
            agent=agent,
            transport=flow.transport,
            endpoint=endpoint,
            request_id=flow.request_id,
            scope=flow.scope,
            session=f"mcp:{session.id}" if session is not None else None,
        )
        opened = await self.requested(flow, request)
        result: dict[str, Any] = await self.observe(flow, opened, run)
        return result
