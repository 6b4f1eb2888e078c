"""The `pinning` guard check: tools are pinned on first sight; a changed or poisoned tool is blocked.

It sees each tool's definition twice: on every `tools/list` result (`filter_tool_list`),
and at call time (`ToolCall.definition`, for agents that call without listing first).
Both paths pin new tools, detect changes, and record events. Blocked tools are hidden
from the agent's tool list (so a changed description never reaches the model) and calls
to them are refused with a message that says how to accept them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import anyio

from bastion.guard.pinning.events import LoggingPinEventSink, PinEventSink
from bastion.guard.pinning.fingerprint import FingerprintMemo, changed_fields
from bastion.guard.pinning.scanner import scan_definition
from bastion.guard.pinning.store import PinRecord, PinStore
from bastion.model import Decision, Principal, ToolCall, Verdict

PinAction = Literal["block", "ask", "log"]
_DECISIONS: dict[PinAction, Decision | None] = {"block": Decision.DENY, "ask": Decision.ASK, "log": None}
_STRICTNESS: dict[PinAction, int] = {"log": 0, "ask": 1, "block": 2}


class PinningCheck:
    """Pins tool definitions per server and holds back tools whose definition changed or looks poisoned.

    `on_change` is what a call to a changed tool gets, `on_finding` what a call to a tool held
    for review gets: `block` (deny), `ask` (human approval) or `log` (allowed; the event is
    still recorded and the tool still listed).
    """

    name = "pinning"

    def __init__(
        self,
        store: PinStore,
        *,
        sink: PinEventSink | None = None,
        on_change: PinAction = "block",
        on_finding: PinAction = "block",
        scan_descriptions: bool = True,
    ) -> None:
        self.store = store
        self.sink: PinEventSink = sink if sink is not None else LoggingPinEventSink()
        self.on_change = on_change
        self.on_finding = on_finding
        self.scan_descriptions = scan_descriptions
        self._fingerprint = FingerprintMemo()

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        record: PinRecord | None
        if call.definition is not None:
            record = await self._see(call.server, call.tool, call.definition)
        else:
            # Not listed by the server: the policy decides. A pin already blocked stays blocked.
            record = self.store.lookup(call.server, call.tool)
        return None if record is None else self.verdict(record)

    async def filter_tool_list(
        self, principal: Principal, server: str, tools: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        visible: list[dict[str, Any]] = []
        names: list[str] = []
        for tool in tools:
            name = tool.get("name")
            if not isinstance(name, str):
                continue  # not a tool an agent could call; not shown
            names.append(name)
            record = await self._see(server, name, tool)
            if self.verdict(record) is None:
                visible.append(tool)
        present = set(names)
        if any(pin.removed_at is None and pin.tool not in present for pin in self.store.pins_of(server)):
            for event in await self.store.mark_removed(server, present):
                await self.sink.emit(event)
        return visible

    def verdict(self, record: PinRecord) -> Verdict | None:
        """What a call to this pinned tool gets: None (pass on) or a deny/ask verdict."""
        if not record.blocked:
            return None
        if record.state == "held":
            action = self.on_finding
            if record.changed_at is not None and _STRICTNESS[self.on_change] > _STRICTNESS[action]:
                action = self.on_change  # held, and changed since: the stricter setting applies
            decision = _DECISIONS[action]
            summary = "; ".join(str(f) for f in record.findings[:3]) or "held for review"
            reason = (
                f"tool {record.tool!r} on server {record.server!r} is held for review: its definition looks like "
                f"it carries hidden instructions ({summary}). An operator must review it and accept it: "
                f"bastion tools accept {record.server} {record.tool}"
            )
        else:
            decision = _DECISIONS[self.on_change]
            fields = changed_fields(record.trusted_definition, record.current_definition)
            reason = (
                f"tool {record.tool!r} on server {record.server!r} changed since it was pinned "
                f"({', '.join(fields) or 'its definition'} changed); it is blocked until an operator reviews "
                f"the change and accepts it: bastion tools accept {record.server} {record.tool}"
            )
        return None if decision is None else Verdict(decision, reason)

    async def _see(self, server: str, tool: str, definition: Mapping[str, Any]) -> PinRecord:
        """The pin of this tool after recording that the server declares it as `definition`."""
        digest = self._fingerprint(definition)
        known = self.store.lookup(server, tool)
        if known is not None and known.current_hash == digest and known.removed_at is None:
            return known
        # New or changed: rare, and a large description takes a while to scan, so off the loop.
        findings = await anyio.to_thread.run_sync(scan_definition, definition) if self.scan_descriptions else ()
        record, events = await self.store.observe(server, tool, digest, definition, findings)
        for event in events:
            await self.sink.emit(event)
        return record
