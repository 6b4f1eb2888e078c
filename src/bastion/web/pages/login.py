"""Sign in with an admin token (`bsa_...`), sign out."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.audit.events import AuthFailed
from bastion.audit.store import AuditStoreError
from bastion.web.context import PageContext
from bastion.web.security import forbidden, same_origin
from bastion.web.session import LOGIN_COOKIE, LOGIN_MAX_AGE, SESSION_COOKIE, SESSION_MAX_AGE, Session

logger = logging.getLogger(__name__)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a dashboard path, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def routes(ctx: PageContext) -> list[BaseRoute]:
    async def form(request: Request, error: str = "", status: int = 200) -> Response:
        cookie, token = ctx.sessions.login_challenge()
        response = ctx.templates.render(
            request,
            "login.html",
            None,
            status=status,
            login_token=token,
            next=safe_next(request.query_params.get("next")),
            error=error,
        )
        ctx.set_cookie(request, response, LOGIN_COOKIE, cookie, LOGIN_MAX_AGE)
        return response

    async def show(request: Request) -> Response:
        if ctx.guard.session_of(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return await form(request)

    async def sign_in(request: Request) -> Response:
        if not same_origin(request, ctx.services.config.public_url):
            return forbidden("cross-site request refused")
        data = await request.form()
        challenge = data.get("login_token")
        if not isinstance(challenge, str) or not ctx.sessions.login_token_valid(
            request.cookies.get(LOGIN_COOKIE), challenge
        ):
            return forbidden("the sign-in form expired or was not sent by this page; reload it and try again")
        token = data.get("token")
        token = token.strip() if isinstance(token, str) else ""
        identity = ctx.services.admin_tokens.verify(token) if token else None
        if identity is None:
            reason = "agent tokens cannot sign in" if token.startswith("bst_") else "invalid or revoked admin token"
            _audit_failure(ctx, request, reason)
            return await form(request, f"Not signed in: {reason}. Use an admin token (bsa_...).", 401)
        response = RedirectResponse(safe_next(str(data.get("next") or "")), status_code=303)
        ctx.set_cookie(request, response, SESSION_COOKIE, ctx.sessions.issue(identity), SESSION_MAX_AGE)
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response

    async def sign_out(request: Request, session: Session) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
        return response

    return [
        Route("/login", show, methods=["GET"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", ctx.guard.action(Role.VIEWER, sign_out), methods=["POST"]),
    ]


def _audit_failure(ctx: PageContext, request: Request, reason: str) -> None:
    client = request.client
    event = AuthFailed(
        reason=f"dashboard sign-in: {reason}", status=401, path="/ui/login", client=client.host if client else None
    )
    try:
        ctx.services.audit.record_nowait(event)
    except AuditStoreError as exc:
        logger.error("audit store cannot record a failed dashboard sign-in: %s", exc)
