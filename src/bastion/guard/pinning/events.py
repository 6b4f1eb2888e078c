"""Pin events, and where they go: a `PinEventSink` (the audit log, once wired; a log line by default)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

logger = logging.getLogger("bastion.pinning")

PinEventKind = Literal["pinned", "held", "changed", "removed", "restored", "accepted"]


@dataclass(frozen=True, slots=True)
class PinEvent:
    """Something happened to a tool's pin. Times are Unix seconds."""

    kind: PinEventKind
    server: str
    tool: str
    time: float
    hash: str | None = None
    """The definition's fingerprint after the event."""
    previous_hash: str | None = None
    """The fingerprint before (for `changed`), or the one accepted over (for `accepted`)."""
    actor: str | None = None
    """Who accepted (for `accepted`)."""
    detail: tuple[str, ...] = field(default_factory=tuple)
    """Changed fields (`changed`) or scanner findings (`held`)."""

    def describe(self) -> str:
        """One line for logs and the CLI."""
        text = f"tool {self.tool!r} on server {self.server!r} {self.kind}"
        if self.actor:
            text += f" by {self.actor}"
        if self.detail:
            text += " (" + "; ".join(self.detail) + ")"
        return text


class PinEventSink(Protocol):
    """Receives every pin event once, after it is stored."""

    async def emit(self, event: PinEvent) -> None: ...


class LoggingPinEventSink:
    """The default sink: a warning for events an operator should look at, info for the rest."""

    async def emit(self, event: PinEvent) -> None:
        level = logging.WARNING if event.kind in ("held", "changed", "removed") else logging.INFO
        logger.log(level, "%s", event.describe())
