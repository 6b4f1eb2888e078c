"""Agents: their tokens (create, shown once; revoke) and, when rate limits provide it, usage against limits."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.audit.store import AuditStoreError
from bastion.auth.token_requests import (
    check_token_request,
    parse_lifetime,
    parse_servers,
    token_created,
    token_revoked,
)
from bastion.web.context import PageContext
from bastion.web.session import Session


def routes(ctx: PageContext) -> list[BaseRoute]:
    services = ctx.services

    async def render(request: Request, session: Session, status: int = 200, **extra: Any) -> Response:
        tokens = services.tokens.list()
        agents = sorted({info.agent for info in tokens} | set(services.config.agents))
        usage = await services.usage.usage(agents) if services.usage is not None else None
        context: dict[str, Any] = {
            "active": "agents",
            "tokens": sorted(tokens, key=lambda info: (info.state != "active", -info.created_at)),
            "agents": agents,
            "servers": [*services.config.servers, *services.config.virtual_servers],
            "usage": usage,
            "created": None,
            "form": {},
            "notice": request.query_params.get("notice", ""),
            "error": request.query_params.get("error", ""),
        }
        return ctx.templates.render(request, "agents.html", session, status=status, **(context | extra))

    async def page(request: Request, session: Session) -> Response:
        return await render(request, session)

    async def create(request: Request, session: Session) -> Response:
        form = await request.form()
        values = {key: str(form.get(key, "")).strip() for key in ("agent", "servers", "expires")}
        try:
            servers = parse_servers(values["servers"])
            check_token_request(services.config, values["agent"], servers)
            info, token = services.tokens.create(values["agent"], servers, expires_in=parse_lifetime(values["expires"]))
        except ValueError as exc:
            return await render(request, session, status=400, error=f"no token created: {exc}", form=values)
        try:
            await services.audit.record(token_created(info))
        except AuditStoreError as exc:
            services.tokens.revoke(info.id)  # fail closed: no token exists without its audit record
            return await render(
                request, session, status=503, error=f"no token created: the audit log cannot be written ({exc})"
            )
        # Rendered, not redirected: the secret must never be in a URL. Pages are sent `no-store`.
        return await render(request, session, status=201, created={"info": info, "token": token})

    async def revoke(request: Request, session: Session) -> Response:
        token_id = request.path_params["id"]
        info = next((t for t in services.tokens.list() if t.id == token_id), None)
        if info is None or not services.tokens.revoke(token_id):
            return _back(error=f"no token {token_id}")
        try:
            await services.audit.record(token_revoked(info))
        except AuditStoreError as exc:
            return _back(error=f"token {token_id} is revoked, but the audit log could not record it: {exc}")
        return _back(notice=f"revoked token {token_id} of agent {info.agent}")

    return [
        Route("/agents", ctx.guard.page(Role.VIEWER, page), methods=["GET"]),
        Route("/agents/tokens", ctx.guard.action(Role.ADMIN, create), methods=["POST"]),
        Route("/agents/tokens/{id}/revoke", ctx.guard.action(Role.ADMIN, revoke), methods=["POST"]),
    ]


def _back(**message: str) -> Response:
    return RedirectResponse(f"/ui/agents?{urlencode(message)}", status_code=303)
