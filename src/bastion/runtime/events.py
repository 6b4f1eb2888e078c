"""Runtime events: egress attempts and server lifecycle, emitted through a `RuntimeEventSink`.

One frozen dataclass per event. The default sink logs them; the gateway's owner may plug in
a sink that writes them to the audit store and raises alerts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import anyio

__all__ = [
    "EgressAllowed",
    "EgressBlocked",
    "LoggingSink",
    "RecordingSink",
    "RuntimeEvent",
    "RuntimeEventSink",
    "SandboxDisabled",
    "ServerExited",
    "ServerGaveUp",
    "ServerRestarted",
    "ServerStarted",
]

logger = logging.getLogger("bastion.runtime.events")
_E = TypeVar("_E")


def _now() -> float:
    return time.time()


@dataclass(frozen=True, slots=True)
class EgressAllowed:
    """A connection through the egress proxy that was let out; emitted when it ends."""

    server: str
    host: str
    port: int
    method: str
    """`CONNECT` for a tunnel (TLS), else the HTTP method of a plain request."""
    address: str
    bytes_out: int
    bytes_in: int
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class EgressBlocked:
    """A connection attempt the egress proxy refused."""

    server: str
    host: str
    port: int
    method: str
    reason: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ServerStarted:
    server: str
    sandboxed: bool
    limits: tuple[tuple[str, str], ...] = ()
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ServerExited:
    server: str
    reason: str
    exit_code: int | None
    at: float = field(default_factory=_now)
    remote: bool = False
    """A server Bastion reaches but does not run (HTTP) went down, rather than a process exiting."""


@dataclass(frozen=True, slots=True)
class ServerRestarted:
    server: str
    attempt: int
    after_seconds: float
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class ServerGaveUp:
    """The crash-loop limit was reached: the supervisor stopped restarting the server."""

    server: str
    restarts: int
    window_seconds: float
    reason: str = ""
    """Why the last attempt failed (its exit, or the sandbox's own error)."""
    at: float = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class SandboxDisabled:
    """A server runs without a sandbox because its config says `sandbox: off`."""

    server: str
    at: float = field(default_factory=_now)


RuntimeEvent = (
    EgressAllowed | EgressBlocked | ServerStarted | ServerExited | ServerRestarted | ServerGaveUp | SandboxDisabled
)


@runtime_checkable
class RuntimeEventSink(Protocol):
    """Receives runtime events. `emit` must not block or raise."""

    def emit(self, event: RuntimeEvent) -> None: ...


_WARNINGS = (EgressBlocked, ServerExited, ServerGaveUp, SandboxDisabled)


class LoggingSink:
    """The default sink: one log line per event (warning for blocked egress, exits, give-ups, no sandbox)."""

    def emit(self, event: RuntimeEvent) -> None:
        level = logging.WARNING if isinstance(event, _WARNINGS) else logging.INFO
        logger.log(level, "%s %s", type(event).__name__, event)


class RecordingSink:
    """Keeps every event in a list, and wakes whoever waits for one (tests assert on it)."""

    def __init__(self) -> None:
        self.events: list[RuntimeEvent] = []
        self._changed = anyio.Event()

    def emit(self, event: RuntimeEvent) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, kind: type[_E], count: int = 1) -> list[_E]:
        """Wait until `count` events of `kind` were emitted (bound it with `anyio.fail_after`)."""
        while len(found := self.of_type(kind)) < count:
            await self._changed.wait()
        return found

    def of_type(self, kind: type[_E]) -> list[_E]:
        return [e for e in self.events if isinstance(e, kind)]
