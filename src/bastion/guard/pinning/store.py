"""The pin store interface. Backends (SQLite now, PostgreSQL later) implement `PinStore`.

A pin is one tool of one server: the definition calls are trusted against, the latest
definition seen, and a state. States:

- `pinned`: the latest definition is the trusted one; calls pass.
- `changed`: the definition changed after it was trusted (a "rug pull"); blocked until accepted.
- `held`: on first sight the scanner found hidden instructions; blocked until accepted.

A pin stays `changed` or `held` until an operator accepts the latest definition, even if
the server reverts. `removed_at` is set while the server no longer lists the tool.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bastion.guard.pinning.events import PinEvent
from bastion.guard.pinning.scanner import Finding

PinState = Literal["pinned", "changed", "held"]


class PinStoreError(Exception):
    """A pin operation was refused (no such pin, or the definition moved on since it was reviewed)."""


@dataclass(frozen=True, slots=True)
class PinRecord:
    """What is known about one tool of one server. Times are Unix seconds."""

    server: str
    tool: str
    state: PinState
    trusted_hash: str | None
    """Fingerprint calls are allowed against; None for a tool held on first sight and never accepted."""
    current_hash: str
    current_definition: Mapping[str, Any]
    trusted_definition: Mapping[str, Any] | None
    findings: tuple[Finding, ...]
    """Scanner findings on the current definition."""
    first_seen: float
    changed_at: float | None = None
    removed_at: float | None = None
    accepted_by: str | None = None
    accepted_at: float | None = None

    @property
    def blocked(self) -> bool:
        """Whether calls to this tool are held back (before the configured action applies)."""
        return self.state != "pinned"

    @property
    def status(self) -> str:
        """`pinned`, `changed`, `held-for-review`, or `removed` (what `bastion tools list` shows)."""
        if self.removed_at is not None:
            return "removed"
        return "held-for-review" if self.state == "held" else self.state


class PinStore(Protocol):
    """Where pins live. Writes are atomic per pin; `lookup` reads a copy in memory that
    reflects changes made by other processes (the CLI, other replicas) within about a second.
    """

    def lookup(self, server: str, tool: str) -> PinRecord | None:
        """The pin of `tool` on `server`, from memory (no I/O on the common path)."""

    def pins_of(self, server: str) -> builtins.list[PinRecord]:
        """Every pin of `server`, from memory, like `lookup`."""

    async def observe(
        self,
        server: str,
        tool: str,
        fingerprint: str,
        definition: Mapping[str, Any],
        findings: tuple[Finding, ...],
    ) -> tuple[PinRecord, builtins.list[PinEvent]]:
        """Record that the server declares `tool` as `definition` now; returns the pin and what happened."""

    async def mark_removed(self, server: str, present: Collection[str]) -> builtins.list[PinEvent]:
        """Record that `server` lists only `present` now: every other pinned tool is marked removed."""

    async def accept(
        self, server: str, tool: str, *, actor: str, expected_hash: str | None = None
    ) -> tuple[PinRecord, PinEvent]:
        """Trust the current definition. `expected_hash` (a prefix of the fingerprint, as
        reviewed) refuses the acceptance if the definition moved on. Raises `PinStoreError`."""

    async def list(self, server: str | None = None) -> builtins.list[PinRecord]:
        """Every pin (of one server), by server and tool."""

    async def events(
        self, server: str | None = None, tool: str | None = None, limit: int = 100
    ) -> builtins.list[PinEvent]:
        """The latest events, oldest first."""

    def close(self) -> None:
        """Release the store."""
