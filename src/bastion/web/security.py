"""Who may see and do what: the session check, roles, CSRF and Origin checks, and the response headers.

Every dashboard route but sign-in and the static files goes through `Guard.page` (reads) or
`Guard.action` (state-changing POSTs). Roles are checked here, on the server, for every
request: hiding a button is never the protection.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.admin.tokens import Role
from bastion.web.session import SESSION_COOKIE, Session, SessionKeeper

Handler = Callable[[Request, Session], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware: every response gets the CSP and framing headers; pages are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        static = path.startswith("/ui/static/") or path == "/favicon.ico"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def forbidden(message: str) -> Response:
    return PlainTextResponse(message, status_code=403)


def same_origin(request: Request, public_url: str | None) -> bool:
    """Whether a state-changing request comes from this site: its Origin (or, lacking one, its
    Referer) must be the origin the browser reached us at, or the configured public URL."""
    source = request.headers.get("origin")
    if source is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True  # not a browser, or one that sends neither; the CSRF token still decides
        parts = urlsplit(referer)
        source = f"{parts.scheme}://{parts.netloc}"
    allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if public_url:
        parts = urlsplit(public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return source in allowed


class Guard:
    """Wraps route handlers with the session, role, CSRF and Origin checks."""

    def __init__(self, sessions: SessionKeeper, public_url: str | None) -> None:
        self.sessions = sessions
        self.public_url = public_url

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.open(request.cookies.get(SESSION_COOKIE))

    def page(self, needed: Role, handler: Handler, *, redirect: bool = True) -> Endpoint:
        """A read: no session is a redirect to sign-in (`redirect`) or 401; too low a role is 403."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                return _signed_out(request, redirect)
            if not session.identity.may(needed):
                return forbidden(f"this needs the {needed.label} role; you have {session.identity.role.label}")
            return await handler(request, session)

        return endpoint

    def action(self, needed: Role, handler: Handler) -> Endpoint:
        """A state-changing POST: also needs this site's Origin and the session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            session = self.session_of(request)
            if session is None:
                return _signed_out(request, redirect=False)
            if not same_origin(request, self.public_url):
                return forbidden("cross-site request refused")
            form = await request.form()
            token = form.get(CSRF_FIELD)
            if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
                return forbidden("missing or wrong CSRF token; reload the page and try again")
            if not session.identity.may(needed):
                return forbidden(f"this needs the {needed.label} role; you have {session.identity.role.label}")
            return await handler(request, session)

        return endpoint


def _signed_out(request: Request, redirect: bool) -> Response:
    if redirect and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
    return PlainTextResponse("sign in first", status_code=401)
