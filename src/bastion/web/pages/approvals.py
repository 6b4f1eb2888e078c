"""Approvals: the queue of held calls, decided in the page (approve, deny with a reason, always allow).

The queue refreshes itself: `approvals.js` polls `/ui/approvals/pending` (the cards alone) and
adds or removes cards without touching the ones on screen, so a reason being typed survives.
Decisions go through `bastion.approvals.decisions.decide`, as the CLI's and the admin API's do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.approvals.decisions import decide
from bastion.approvals.model import Approval, ApprovalError, ApprovalState
from bastion.web.context import PageContext
from bastion.web.highlight import HighlightedArguments
from bastion.web.session import Session

RECENTLY_DECIDED = 20
DECISIONS = ("approve", "always", "deny")


def routes(ctx: PageContext) -> list[BaseRoute]:
    services = ctx.services
    highlighted = HighlightedArguments(services.policy)

    def cards() -> list[dict[str, Any]]:
        return [{"approval": a, "arguments": highlighted(a)} for a in services.approvals.list(ApprovalState.PENDING)]

    async def queue(request: Request, session: Session) -> Response:
        decided = [a for a in services.approvals.list() if a.state is not ApprovalState.PENDING]
        decided.sort(key=lambda a: a.decided_at or a.expires_at, reverse=True)
        return ctx.templates.render(
            request,
            "approvals.html",
            session,
            active="approvals",
            cards=cards(),
            decided=decided[:RECENTLY_DECIDED],
            notice=request.query_params.get("notice", ""),
            error=request.query_params.get("error", ""),
        )

    async def pending(request: Request, session: Session) -> Response:
        return ctx.templates.render(request, "approval_cards.html", session, cards=cards())

    async def decide_one(request: Request, session: Session) -> Response:
        form = await request.form()
        choice = str(form.get("decision", ""))
        reason = str(form.get("reason", "")).strip()
        approval_id = request.path_params["id"]
        if choice not in DECISIONS:
            return _back(error="choose approve, always allow or deny")
        if choice == "deny" and not reason:
            return _back(error="say why the call is denied (the agent is told)")
        if services.approvals.get(approval_id) is None:
            return _back(error=f"no approval {approval_id}")
        try:
            decided = decide(
                services.approvals,
                services.approval_events,
                approval_id,
                approve=choice != "deny",
                decided_by=f"dashboard:{session.identity.name}",
                reason=reason,
                always=choice == "always",
                via="dashboard",
            )
        except ApprovalError as exc:
            return _back(error=str(exc))
        return _back(notice=_summary(decided))

    return [
        Route("/approvals", ctx.guard.page(Role.VIEWER, queue), methods=["GET"]),
        Route("/approvals/pending", ctx.guard.page(Role.VIEWER, pending, redirect=False), methods=["GET"]),
        Route("/approvals/{id}/decide", ctx.guard.action(Role.APPROVER, decide_one), methods=["POST"]),
    ]


def _summary(approval: Approval) -> str:
    verb = "approved" if approval.state is ApprovalState.APPROVED else "denied"
    always = " (always allowed from now on)" if approval.always else ""
    return f"{verb} {approval.agent}'s call to {approval.server}/{approval.tool}{always}"


def _back(*, notice: str = "", error: str = "") -> Response:
    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    return RedirectResponse(f"/ui/approvals?{query}" if query else "/ui/approvals", status_code=303)
