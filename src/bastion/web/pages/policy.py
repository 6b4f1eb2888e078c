"""Policy: the rules and catalogue in force, the always-allow rules, and "try a call" (the policy dry run)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bastion.admin.tokens import Role
from bastion.guard.policy.catalogue import CATALOGUE
from bastion.guard.policy.dryrun import DRY_RUN_AGENT, CallLineError, DryRunCall, decide, engine_for
from bastion.web.context import PageContext
from bastion.web.session import Session

TRY_FIELDS = ("agent", "server", "tool", "arguments", "annotations")


def routes(ctx: PageContext) -> list[BaseRoute]:
    services = ctx.services
    policy = services.policy
    engine = engine_for(policy)
    catalogue = sorted(CATALOGUE.values(), key=lambda entry: entry.id)

    def render(request: Request, session: Session, status: int = 200, **extra: Any) -> Response:
        context: dict[str, Any] = {
            "active": "policy",
            "policy": policy,
            "catalogue": [(entry, engine.entry_setting(entry)) for entry in catalogue],
            "allow_rules": services.approvals.rules(),
            "servers": list(services.config.servers),
            "form": {"agent": DRY_RUN_AGENT, "arguments": "{}"},
            "decision": None,
            "try_error": "",
            "notice": request.query_params.get("notice", ""),
            "error": request.query_params.get("error", ""),
        }
        return ctx.templates.render(request, "policy.html", session, status=status, **(context | extra))

    async def page(request: Request, session: Session) -> Response:
        return render(request, session)

    async def try_call(request: Request, session: Session) -> Response:
        form = await request.form()
        values = {key: str(form.get(key, "")).strip() for key in TRY_FIELDS}
        data: dict[str, Any] = {"server": values["server"], "tool": values["tool"]}
        data["agent"] = values["agent"] or DRY_RUN_AGENT
        try:
            for key in ("arguments", "annotations"):
                if values[key]:
                    try:
                        data[key] = json.loads(values[key])
                    except json.JSONDecodeError as exc:
                        raise CallLineError(f"{key} is not JSON: {exc}") from None
            call = DryRunCall.from_json(data)
            decision = decide(engine, policy, call, explain=True)
        except CallLineError as exc:
            return render(request, session, status=400, form=values, try_error=str(exc))
        return render(request, session, form=values, decision=decision)

    async def revoke_rule(request: Request, session: Session) -> Response:
        rule_id = request.path_params["id"]
        if not services.approvals.revoke_rule(rule_id):
            return _back(error=f"no active always-allow rule {rule_id}")
        return _back(notice=f"revoked always-allow rule {rule_id}")

    return [
        Route("/policy", ctx.guard.page(Role.VIEWER, page), methods=["GET"]),
        Route("/policy/try", ctx.guard.action(Role.VIEWER, try_call), methods=["POST"]),
        Route("/policy/allow-rules/{id}/revoke", ctx.guard.action(Role.ADMIN, revoke_rule), methods=["POST"]),
    ]


def _back(**message: str) -> Response:
    return RedirectResponse(f"/ui/policy?{urlencode(message)}", status_code=303)
