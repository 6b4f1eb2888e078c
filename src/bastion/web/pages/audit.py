"""Audit: filter and full-text search the log, page through it, open one call (web/call_view.py), export."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.alerts.model import Alert
from bastion.audit.chain import decode_row
from bastion.audit.events import EVENT_TYPES, StoredEvent
from bastion.audit.export import ExportFormat, export_chunks
from bastion.audit.query import EventQuery
from bastion.audit.search import DEFAULT_PAGE_SIZE, SearchPage, search
from bastion.audit.store import AuditStore, AuditStoreError
from bastion.web.audit_filters import RANGES, VERDICTS, AuditFilters, FilterError, parse_filters
from bastion.web.call_view import CallView, call_view
from bastion.web.chain import caused_by, source_call_of, source_view
from bastion.web.context import PageContext, off_loop
from bastion.web.session import Session
from bastion.web.tree import mask, tree

MAX_CALL_EVENTS = 500
MAX_RELATED_EVENTS = 200
"""Decisions and egress blocks looked at around one call."""
MAX_ALERTS = 100
EXPORTS: dict[str, tuple[ExportFormat, str, str]] = {
    "csv": ("csv", "text/csv; charset=utf-8", "csv"),
    "json": ("json", "application/json", "json"),
    "jsonl": ("jsonl", "application/x-ndjson", "jsonl"),
}


def summary(event: StoredEvent) -> str:
    """The one detail that says most about an event, for the results table."""
    details = event.details
    for key in ("verdict", "outcome", "reason", "host", "decided_by", "error"):
        value = details.get(key)
        if value:
            return str(mask(f"{key}: {value}"))  # a reason or an error may quote a credential
    return ""


def load_call(
    reader: AuditStore, seq: int, alerts: list[Alert]
) -> tuple[StoredEvent | None, list[StoredEvent], CallView | None]:
    """Event `seq`, the events of its call (oldest first) and the call's view (None for an event of no call)."""
    found = search(reader, EventQuery(), limit=1, cursor=str(seq + 1)).events
    if not found or found[0].seq != seq:
        return None, [], None
    one = found[0]
    if one.correlation_id is None:
        return one, [one], None
    call = search(reader, EventQuery(correlation_id=one.correlation_id), limit=MAX_CALL_EVENTS).events
    events = sorted(call, key=lambda e: e.seq)
    first, last = events[0], events[-1]
    decisions: list[StoredEvent] = []
    if any(e.type == "approval.requested" for e in events):
        held = EventQuery(types=("approval.decided",), agent=first.agent, server=first.server, since=first.time)
        decisions = _oldest_first(reader, held)
    egress = EventQuery(types=("egress.blocked",), server=first.server, since=first.time, until=last.time + 1)
    view = call_view(events, decisions=decisions, egress=_oldest_first(reader, egress), alerts=alerts)
    source = source_call_of(events)
    if source is not None and source != one.correlation_id:
        view = dataclasses.replace(view, source=source_view(reader, source))
    view.caused.extend(caused_by(reader, events))
    return one, events, view


def _oldest_first(reader: AuditStore, query: EventQuery) -> list[StoredEvent]:
    return [decode_row(row) for row in reader.rows(query, newest_first=False, limit=MAX_RELATED_EVENTS)]


def routes(ctx: PageContext) -> list[BaseRoute]:
    reader = ctx.services.audit

    async def page(request: Request, session: Session) -> Response:
        context: dict[str, Any] = {"active": "audit", "types": sorted(EVENT_TYPES), "verdicts": VERDICTS}
        context |= {"ranges": tuple(RANGES), "error": "", "results": None, "summary": summary}
        try:
            filters = parse_filters(request.query_params)
        except FilterError as exc:
            filters = AuditFilters({k: v for k, v in request.query_params.items()})
            context["error"] = str(exc)
            return ctx.templates.render(request, "audit.html", session, filters=filters, status=400, **context)
        cursor = request.query_params.get("cursor") or None
        try:
            results: SearchPage = await off_loop(lambda: search(reader, filters.query, cursor=cursor))
        except ValueError as exc:
            context["error"] = str(exc)
            return ctx.templates.render(request, "audit.html", session, filters=filters, status=400, **context)
        except AuditStoreError as exc:
            context["error"] = f"the audit log cannot be read: {exc}"
            return ctx.templates.render(request, "audit.html", session, filters=filters, status=503, **context)
        context |= {"results": results, "cursor": cursor, "page_size": DEFAULT_PAGE_SIZE}
        return ctx.templates.render(request, "audit.html", session, filters=filters, **context)

    async def event(request: Request, session: Session) -> Response:
        seq = request.path_params["seq"]
        one, events, view = await off_loop(lambda: load_call(reader, seq, ctx.services.alerts.latest(MAX_ALERTS)))
        if one is None:
            return PlainTextResponse(f"no audit event {seq}", status_code=404)
        raw = [(e, mask(e.details)) for e in events]
        context = {"active": "audit", "event": one, "events": raw, "call": view, "tree": tree}
        return ctx.templates.render(request, "audit_event.html", session, **context)

    async def export(request: Request, session: Session) -> Response:
        fmt = request.query_params.get("format", "csv")
        if fmt not in EXPORTS:
            return PlainTextResponse("format must be csv, json or jsonl", status_code=400)
        try:
            filters = parse_filters(request.query_params)
        except FilterError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        export_format, media_type, suffix = EXPORTS[fmt]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return StreamingResponse(
            export_chunks(reader, filters.query, export_format),  # sync: Starlette reads it in a worker thread
            media_type=media_type,
            headers={"content-disposition": f'attachment; filename="bastion-audit-{stamp}.{suffix}"'},
        )

    return [
        Route("/audit", ctx.guard.page(Role.VIEWER, page), methods=["GET"]),
        Route("/audit/events/{seq:int}", ctx.guard.page(Role.VIEWER, event), methods=["GET"]),
        Route("/audit/export", ctx.guard.page(Role.VIEWER, export, redirect=False), methods=["GET"]),
    ]
