"""Jinja2 templates (autoescaping on, always) and the filters the pages share."""

from __future__ import annotations

import json
import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bastion.admin.tokens import Role
from bastion.audit.subject import subject
from bastion.web.security import CSRF_FIELD
from bastion.web.session import Session

NAV = (
    ("overview", "/ui/", "Overview"),
    ("approvals", "/ui/approvals", "Approvals"),
    ("audit", "/ui/audit", "Audit"),
    ("servers", "/ui/servers", "Servers"),
    ("agents", "/ui/agents", "Agents"),
    ("policy", "/ui/policy", "Policy"),
)


def when(t: float | None) -> str:
    """A Unix time as `YYYY-MM-DD HH:MM:SS` UTC; `-` for none."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t is not None else "-"


def ago(t: float | None, now: float | None = None) -> str:
    """How long ago, roughly: `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`."""
    if t is None:
        return "-"
    seconds = max(0.0, (now if now is not None else time.time()) - t)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def short_hash(fingerprint: str | None) -> str:
    return fingerprint.removeprefix("sha256:")[:12] if fingerprint else "-"


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bastion.web", "templates"),
        autoescape=True,  # every template, whatever its name: values are always HTML-escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, ago=ago, pretty_json=pretty_json, short_hash=short_hash)
    env.globals.update(nav=NAV, csrf_field=CSRF_FIELD, subject=subject)
    return env


class Templates:
    """Renders a page with what every page needs: who is signed in, what they may do, the CSRF token."""

    def __init__(self) -> None:
        self.env = make_environment()

    def render(
        self, request: Request, name: str, session: Session | None, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        return HTMLResponse(self.text(name, session, **context), status_code=status)

    def text(self, name: str, session: Session | None, **context: Any) -> str:
        identity = session.identity if session is not None else None
        base = {
            "me": identity,
            "csrf": session.csrf if session is not None else "",
            "can_approve": identity is not None and identity.may(Role.APPROVER),
            "can_admin": identity is not None and identity.may(Role.ADMIN),
            "active": "",
        }
        return self.env.get_template(name).render({**base, **context})
