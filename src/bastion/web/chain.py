"""The provenance chain on the call page: a poisoned result and the later calls it got held.

A call that provenance held or denied names the result its argument value came from: its
verdict's `source_call` (older records: the `(call <id>)` its reason ends with). The page links
to that result's call and shows what was found in it (`result.flagged`: detectors and spans).
The page of a result shows, the other way, the later calls that named it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bastion.audit.chain import decode_row
from bastion.audit.events import StoredEvent
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader
from bastion.web.tree import mask

PROVENANCE_CHECK = "provenance"
MAX_CAUSED = 50
"""Later calls listed on a result's page at most."""
_REASON_CALL = re.compile(r"\(call ([0-9A-Za-z_-]{1,64})\)\s*$")


@dataclass(frozen=True, slots=True)
class SourceView:
    """The result a held call's value came from."""

    correlation_id: str
    seq: int | None
    """An event of that call, for the link (None: the call is not in the log any more)."""
    server: str | None
    tool: str | None
    detectors: tuple[str, ...]
    findings: tuple[str, ...]
    """Which detector found what, where (`framing in content[0].text[12:40]: ...`)."""
    action: str | None


@dataclass(frozen=True, slots=True)
class CausedView:
    """A later call provenance held or denied because of this result."""

    seq: int
    correlation_id: str | None
    agent: str | None
    server: str | None
    tool: str | None
    verdict: str
    reason: str


def source_call_of(events: Sequence[StoredEvent]) -> str | None:
    """The result a call's provenance verdict names: the `source_call` of its verdict, or (older
    records) the `(call <id>)` ending the reason the provenance check gave (its verdict's, or the
    approval request's when the call was held)."""
    for event in reversed(events):
        if event.type != "call.verdict":
            continue
        named = event.details.get("source_call")
        if isinstance(named, str) and named:
            return named
    for event in events:
        if event.type in ("call.verdict", "approval.requested") and event.details.get("rule") == PROVENANCE_CHECK:
            reason = event.details.get("reason")
            found = _REASON_CALL.search(reason) if isinstance(reason, str) else None
            if found:
                return found[1]
    return None


def source_view(reader: AuditReader, correlation_id: str) -> SourceView:
    """The result `correlation_id`: where it is in the log and what was found in it."""
    rows = reader.rows(EventQuery(correlation_id=correlation_id), newest_first=False, limit=50)
    events = [decode_row(row) for row in rows]
    flagged = next((e for e in events if e.type == "result.flagged"), None)
    anchor = next((e for e in events if e.type == "call.requested"), events[0] if events else None)
    if anchor is None:
        return SourceView(correlation_id, None, None, None, (), (), None)
    details = flagged.details if flagged is not None else {}
    tool = anchor.details.get("tool") or details.get("tool") or anchor.details.get("method")
    return SourceView(
        correlation_id,
        anchor.seq,
        anchor.server,
        tool if isinstance(tool, str) else None,
        tuple(str(d) for d in details.get("detectors") or ()),
        tuple(str(mask(str(f))) for f in details.get("findings") or ()),
        str(details["action"]) if details.get("action") else None,
    )


def caused_by(reader: AuditReader, events: Sequence[StoredEvent]) -> list[CausedView]:
    """The later calls whose provenance verdict names the call of `events` (a result's call)."""
    first = events[0] if events else None
    if first is None or first.correlation_id is None:
        return []
    call_id = first.correlation_id
    query = EventQuery(types=("call.verdict",), agent=first.agent, since=first.time, text=call_id)
    found = [decode_row(row) for row in reader.rows(query, newest_first=False, limit=MAX_CAUSED * 2)]
    caused = []
    for verdict in found:
        named = verdict.details.get("source_call")
        reason = verdict.details.get("reason")
        older = named is None and isinstance(reason, str) and f"(call {call_id})" in reason
        if verdict.correlation_id == call_id or (named != call_id and not older):
            continue
        tool = verdict.details.get("tool")
        caused.append(
            CausedView(
                verdict.seq,
                verdict.correlation_id,
                verdict.agent,
                verdict.server,
                tool if isinstance(tool, str) else None,
                str(verdict.details.get("verdict") or ""),
                str(mask(str(verdict.details.get("reason") or ""))),
            )
        )
    return caused[:MAX_CAUSED]
