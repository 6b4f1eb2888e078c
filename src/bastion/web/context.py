"""What every page module is built with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from bastion.web.security import Guard
from bastion.web.services import DashboardServices
from bastion.web.session import SessionKeeper
from bastion.web.templating import Templates

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageContext:
    services: DashboardServices
    templates: Templates
    guard: Guard
    sessions: SessionKeeper
    secure_cookies: bool

    def set_cookie(self, request: Request, response: Response, name: str, value: str, max_age: int) -> None:
        """An HttpOnly, SameSite=Strict cookie for `/ui`, Secure when served over https."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/ui",
            secure=self.secure_cookies or request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )


async def off_loop(function: Any, *args: Any) -> Any:
    """Run a blocking store read in a worker thread, so a long audit query never stalls the gateway's loop."""
    return await anyio.to_thread.run_sync(function, *args)
