"""The dashboard's ASGI app: every page's routes under `/ui`, the static files, the security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from bastion.web.context import PageContext
from bastion.web.pages import agents, approvals, audit, login, overview, policy, servers
from bastion.web.security import Guard, SecurityHeaders
from bastion.web.services import DashboardServices
from bastion.web.session import SessionKeeper
from bastion.web.templating import Templates

STATIC_DIR = Path(__file__).parent / "static"


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
        self.app: ASGIApp = SecurityHeaders(Starlette(routes=[Mount("/ui", routes=routes)]))
