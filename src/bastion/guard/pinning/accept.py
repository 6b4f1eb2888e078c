"""Accepting tool definitions: the one path `bastion tools accept` and the dashboard share."""

from __future__ import annotations

import difflib
import json
from typing import Any

from bastion.guard.pinning.events import PinEvent, PinEventSink
from bastion.guard.pinning.store import PinRecord, PinStore


async def accept_tools(
    store: PinStore,
    server: str,
    tool: str | None,
    *,
    actor: str,
    expected_hash: str | None = None,
    sink: PinEventSink | None = None,
) -> list[tuple[PinRecord, PinEvent]]:
    """Trust the current definition of `server`'s `tool`, or of every blocked tool of `server` (`tool` None).

    `expected_hash` (a prefix of the fingerprint as reviewed) refuses the acceptance if the
    definition moved on. Each acceptance's event goes to `sink`. Raises `PinStoreError`.
    """
    if tool is None and expected_hash is not None:
        raise ValueError("an expected hash applies to one tool")
    names = [tool] if tool is not None else [r.tool for r in await store.list(server) if r.blocked]
    accepted: list[tuple[PinRecord, PinEvent]] = []
    for name in names:
        record, event = await store.accept(server, name, actor=actor, expected_hash=expected_hash)
        accepted.append((record, event))
        if sink is not None:
            await sink.emit(event)
    return accepted


def pretty_definition(definition: Any) -> str:
    """A tool definition as stable, indented JSON (what a reviewer reads)."""
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=True)


def definition_diff(record: PinRecord) -> list[str] | None:
    """The unified diff from the trusted definition to the current one; None when there is no change to show."""
    if record.trusted_definition is None or record.trusted_hash == record.current_hash:
        return None
    return list(
        difflib.unified_diff(
            pretty_definition(record.trusted_definition).splitlines(),
            pretty_definition(record.current_definition).splitlines(),
            "trusted",
            "current",
            lineterm="",
        )
    )
