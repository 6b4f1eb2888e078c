"""Servers and tools: each server's state and its pinned tools; review and accept a changed definition."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.audit.store import AuditStoreError
from bastion.guard.pinning import PinRecord, PinStoreError, accept_tools
from bastion.guard.pinning.accept import definition_diff, pretty_definition
from bastion.web.context import PageContext
from bastion.web.session import Session


def routes(ctx: PageContext) -> list[BaseRoute]:
    services = ctx.services

    async def overview(request: Request, session: Session) -> Response:
        pins: dict[str, list[PinRecord]] = {}
        if services.pins is not None:
            for record in await services.pins.list():
                pins.setdefault(record.server, []).append(record)
        return ctx.templates.render(
            request,
            "servers.html",
            session,
            active="servers",
            servers=services.servers(),
            pins=pins,
            pinning=services.pins is not None,
        )

    async def find(server: str, tool: str) -> PinRecord | None:
        if services.pins is None:
            return None
        return next((r for r in await services.pins.list(server) if r.tool == tool), None)

    async def tool_page(request: Request, session: Session) -> Response:
        server, tool = request.path_params["server"], request.path_params["tool"]
        record = await find(server, tool)
        if record is None:
            return PlainTextResponse(f"no pinned tool {tool!r} on server {server!r}", status_code=404)
        return ctx.templates.render(
            request,
            "tool.html",
            session,
            active="servers",
            record=record,
            diff=definition_diff(record),
            current=pretty_definition(record.current_definition),
            notice=request.query_params.get("notice", ""),
            error=request.query_params.get("error", ""),
        )

    async def accept(request: Request, session: Session) -> Response:
        server, tool = request.path_params["server"], request.path_params["tool"]
        expected = str((await request.form()).get("hash", "")) or None
        back = f"/ui/servers/{quote(server, safe='')}/tools/{quote(tool, safe='')}"
        if services.pins is None or await find(server, tool) is None:
            return PlainTextResponse(f"no pinned tool {tool!r} on server {server!r}", status_code=404)
        # As `bastion tools accept`: nothing is accepted unless the audit log takes writes now.
        if not await services.audit.check_writable():
            return _redirect(back, error="nothing accepted: the audit log cannot be written")
        try:
            await accept_tools(
                services.pins,
                server,
                tool,
                actor=f"dashboard:{session.identity.name}",
                expected_hash=expected,
                sink=services.pin_events,
            )
        except (PinStoreError, ValueError) as exc:
            return _redirect(back, error=str(exc))
        try:
            await services.audit.flush()
        except AuditStoreError as exc:
            return _redirect(back, error=f"accepted, but the audit log could not record it: {exc}")
        return _redirect(back, notice=f"accepted the current definition of {server}/{tool}")

    return [
        Route("/servers", ctx.guard.page(Role.VIEWER, overview), methods=["GET"]),
        Route("/servers/{server}/tools/{tool}", ctx.guard.page(Role.VIEWER, tool_page), methods=["GET"]),
        Route("/servers/{server}/tools/{tool}/accept", ctx.guard.action(Role.ADMIN, accept), methods=["POST"]),
    ]


def _redirect(path: str, **message: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode(message)}", status_code=303)
