"""Overview: each server's state, the last hour's activity, pending approvals, recent alerts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.approvals.model import ApprovalState
from bastion.web.activity import last_hour
from bastion.web.charts import bar_chart
from bastion.web.context import PageContext, off_loop
from bastion.web.session import Session

RECENT_ALERTS = 10


def routes(ctx: PageContext) -> list[BaseRoute]:
    services = ctx.services

    async def overview(request: Request, session: Session) -> Response:
        activity = await off_loop(last_hour, services.audit)
        charts = [
            ("Tool calls", sum(activity.calls), bar_chart(activity.calls, "Tool calls", "calls")),
            ("Denied", sum(activity.denials), bar_chart(activity.denials, "Denied calls", "denials")),
            ("Held for approval", sum(activity.held), bar_chart(activity.held, "Held calls", "held")),
        ]
        return ctx.templates.render(
            request,
            "overview.html",
            session,
            active="overview",
            servers=services.servers(),
            charts=charts,
            pending=len(services.approvals.list(ApprovalState.PENDING)),
            alerts=services.alerts.latest(RECENT_ALERTS),
        )

    return [Route("/", ctx.guard.page(Role.VIEWER, overview), methods=["GET"])]
