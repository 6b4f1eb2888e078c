"""Runtime events as audit events, and the sink that reports them on the event bus.

A blocked egress attempt is tied to the calls in flight on its server when it happened:
the sink asks `attribute` (the gateway's registry of calls in flight) and names them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from bastion.audit import events as audit
from bastion.audit.bus import EventSink as Bus
from bastion.runtime import events as runtime

logger = logging.getLogger(__name__)


class CallInFlight(Protocol):
    """One request being served on the server (`gateway.in_flight.InFlightCall`)."""

    @property
    def call_id(self) -> str: ...

    def as_dict(self) -> dict[str, str | None]: ...


class CallsInFlight(Protocol):
    """The calls an event happened during (`gateway.in_flight.Attribution`)."""

    @property
    def calls(self) -> Sequence[CallInFlight]: ...

    @property
    def only(self) -> CallInFlight | None: ...

    @property
    def agent(self) -> str | None: ...

    @property
    def tool(self) -> str | None: ...


Attribute = Callable[[str, str], CallsInFlight]
"""The calls in flight on a server now, given the server and the blocked `host:port` (noted on each)."""


class AuditedRuntimeEvents:
    """A `RuntimeEventSink`: each runtime event onto the bus as its audit kind, then to `forward`."""

    def __init__(self, bus: Bus, forward: runtime.RuntimeEventSink, attribute: Attribute | None = None) -> None:
        self.bus = bus
        self.forward = forward
        self.attribute = attribute

    def emit(self, event: runtime.RuntimeEvent) -> None:
        try:
            during = None
            if isinstance(event, runtime.EgressBlocked) and self.attribute is not None:
                during = self.attribute(event.server, f"{event.host}:{event.port}")
            self.bus.emit(runtime_audit_event(event, during))
        except Exception:  # the protocol: emit never raises
            logger.exception("could not record runtime event %r", event)
        self.forward.emit(event)


def runtime_audit_event(event: runtime.RuntimeEvent, during: CallsInFlight | None = None) -> audit.AuditEvent:
    """The audit event for a runtime event; `during`: the calls in flight when it happened."""
    match event:
        case runtime.EgressAllowed():
            return audit.EgressAllowed(
                time=event.at,
                server=event.server,
                host=event.host,
                port=event.port,
                method=event.method,
                address=event.address,
                bytes_out=event.bytes_out,
                bytes_in=event.bytes_in,
            )
        case runtime.EgressBlocked():
            calls = during.calls if during is not None else ()
            only = during.only if during is not None else None
            return audit.EgressBlocked(
                time=event.at,
                server=event.server,
                agent=during.agent if during is not None else None,
                correlation_id=only.call_id if only is not None else None,
                host=event.host,
                port=event.port,
                method=event.method,
                reason=event.reason,
                tool=during.tool if during is not None else None,
                ambiguous=len(calls) > 1,
                calls=[call.as_dict() for call in calls] if len(calls) > 1 else None,
                in_flight=tuple(call.as_dict() for call in calls),
            )
        case runtime.ServerStarted():
            return audit.ServerStarted(
                time=event.at, server=event.server, sandboxed=event.sandboxed, limits=dict(event.limits)
            )
        case runtime.ServerExited():
            return audit.ServerExited(
                time=event.at, server=event.server, exit_code=event.exit_code, reason=event.reason, remote=event.remote
            )
        case runtime.ServerRestarted():
            return audit.ServerRestarted(
                time=event.at,
                server=event.server,
                attempt=event.attempt,
                reason=f"restarted {event.after_seconds:g} s after it exited",
            )
        case runtime.ServerGaveUp():
            return audit.ServerGaveUp(
                time=event.at,
                server=event.server,
                restarts=event.restarts,
                window_seconds=event.window_seconds,
                reason=event.reason,
            )
        case runtime.SandboxDisabled():
            return audit.SandboxDisabled(time=event.at, server=event.server)
