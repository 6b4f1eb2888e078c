"""Pin events as audit events, and the sink that reports them on the event bus."""

from __future__ import annotations

from bastion.audit import events as audit
from bastion.audit.bus import EventSink as Bus
from bastion.guard.pinning.events import PinEvent, PinEventSink


class AuditedPinEvents:
    """A `PinEventSink`: each pin event onto the bus as its audit kind, then to `forward` (a log line by default)."""

    def __init__(self, bus: Bus, forward: PinEventSink) -> None:
        self.bus = bus
        self.forward = forward

    async def emit(self, event: PinEvent) -> None:
        translated = pin_audit_event(event)
        if translated is not None:
            self.bus.emit(translated)
        await self.forward.emit(event)


def pin_audit_event(event: PinEvent) -> audit.AuditEvent | None:
    """The audit event for a pin event."""
    at, server, tool, digest = event.time, event.server, event.tool, event.hash
    match event.kind:
        case "pinned":
            return audit.ToolPinned(time=at, server=server, tool=tool, digest=digest or "")
        case "changed":
            old = event.previous_hash or ""
            return audit.ToolChanged(
                time=at, server=server, tool=tool, old_digest=old, new_digest=digest or "", changes=event.detail
            )
        case "held":
            return audit.ToolHeld(time=at, server=server, tool=tool, digest=digest or "", findings=event.detail)
        case "accepted":
            return audit.ToolAccepted(
                time=at,
                server=server,
                tool=tool,
                digest=digest or "",
                accepted_by=event.actor or "",
                previous_digest=event.previous_hash,
            )
        case "removed":
            return audit.ToolRemoved(time=at, server=server, tool=tool, digest=digest)
        case "restored":
            return audit.ToolRestored(time=at, server=server, tool=tool, digest=digest)
    return None
