"""The dashboard's ASGI app: every page's routes under `/ui`, the static files, `/favicon.ico`, the security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from bastion.web.context import PageContext
from bastion.web.pages import agents, approvals, audit, login, overview, policy, servers
from bastion.web.security import Guard, SecurityHeaders
from bastion.web.services import DashboardServices
from bastion.web.session import SessionKeeper
from bastion.web.templating import Templates

STATIC_DIR = Path(__file__).parent / "static"
FAVICON = STATIC_DIR / "favicon.ico"


async def favicon(request: Request) -> Response:
    """The icon browsers ask for at the site's root, whatever the page links."""
    return FileResponse(FAVICON, media_type="image/x-icon")


class Dashboard:
    """Builds the app; `app` is the ASGI callable the gateway mounts at `/ui`."""

    def __init__(self, services: DashboardServices, *, secure_cookies: bool = False) -> None:
        sessions = SessionKeeper(services.secret_file, services.admin_tokens)
        self.context = PageContext(
            services=services,
            templates=Templates(),
            guard=Guard(sessions, services.config.public_url),
            sessions=sessions,
            secure_cookies=secure_cookies,
        )
        routes = [
            route
            for page in (login, overview, approvals, audit, servers, agents, policy)
            for route in page.routes(self.context)
        ]
        routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
        top = [Mount("/ui", routes=routes), Route("/favicon.ico", favicon, methods=["GET", "HEAD"])]
        self.app: ASGIApp = SecurityHeaders(Starlette(routes=top))
