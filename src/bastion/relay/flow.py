"""One flow per request: what the relay knows of a request from the moment it is parsed to its answer.

A `Flow` carries the caller (principal), the server and endpoint, the parsed message
(method, id, params and, for a `tools/call`, the tool and its arguments, `_meta`), the
protocol era, the verdict and the timings. Hooks see it in one order:

    requested -> decided -> forwarded -> completed

The audit hook (`audit_hook.AuditHook`) is the outermost: it records the request before
any other hook runs (write-ahead for `tools/call`), and its end after every other one; it
only observes the flow and never calls back into the relay.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bastion.model import Principal, Verdict
from bastion.relay.jsonrpc import Request, RequestId

if TYPE_CHECKING:
    from bastion.proxy.recording import OpenCall
    from bastion.relay.session import RelaySession


class Channel(Protocol):
    """A request's way back to its agent: progress, and server-to-client requests where the era has them."""

    @property
    def session(self) -> RelaySession | None:
        """The handshake-era session the request came on (None: a 2026-era request has none)."""

    @property
    def can_send_request(self) -> bool: ...

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None: ...

    async def send_request(self, request: Any, result_type: Any, *, metadata: Any = None) -> Any: ...


@dataclass(eq=False, slots=True)
class Timings:
    """`time.perf_counter()` at each step; None until the step is reached."""

    requested: float = field(default_factory=time.perf_counter)
    decided: float | None = None
    forwarded: float | None = None
    completed: float | None = None


@dataclass(eq=False, slots=True)
class Flow:
    """One agent request on its way through the relay. Also what forwarding reads (`proxy.RequestScope`)."""

    principal: Principal
    server: str
    endpoint: str | None
    method: str
    request_id: RequestId | None
    params: dict[str, Any] | None
    protocol_version: str
    transport: str
    session: Channel
    """The agent's channel back for this request (progress, server-to-client requests)."""
    tool: str | None = None
    verdict: Verdict | None = None
    timings: Timings = field(default_factory=Timings)
    record: OpenCall | None = None
    """The audit record, once the audit hook has opened it."""
    scope: Mapping[str, Any] | None = None
    """The HTTP request's ASGI scope, for traces (None over stdio)."""

    @property
    def arguments(self) -> Any:
        return (self.params or {}).get("arguments") if self.method == "tools/call" else None

    @property
    def meta(self) -> Any:
        return (self.params or {}).get("_meta")

    @classmethod
    def of(
        cls,
        request: Request,
        principal: Principal,
        server: str,
        *,
        protocol_version: str,
        transport: str,
        session: Channel,
        scope: Mapping[str, Any] | None = None,
    ) -> Flow:
        """The flow of `request` from `principal` to `server` (a front door's own endpoint)."""
        return cls(
            principal=principal,
            server=server,
            endpoint=None,
            method=request.method,
            request_id=request.id,
            params=request.params,
            protocol_version=protocol_version,
            transport=transport,
            session=session,
            scope=scope,
        )
