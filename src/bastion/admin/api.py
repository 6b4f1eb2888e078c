"""The JSON admin API, mounted by the gateway under `/admin/api/`. See docs/admin-api.md.

Every route but the OpenAPI description needs an admin token (`Authorization: Bearer bsa_...`).
No credential: 401. An agent credential: 403 (agents never administer Bastion). A role too
low for the route: 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bastion.admin.openapi import openapi_document
from bastion.admin.tokens import AdminIdentity, AdminTokenStore, Role
from bastion.approvals.decisions import decide
from bastion.approvals.events import EventSink
from bastion.approvals.model import ApprovalError, ApprovalState
from bastion.approvals.store import ApprovalStore
from bastion.model import Principal

PREFIX = "/admin/api"
AgentAuthenticator = Callable[[str | None], Awaitable[Principal | None]]
LimitsUsage = Callable[[], Awaitable[dict[str, Any]]]
"""The gateway's report of each limit's use (bastion.guard.ratelimit.usage)."""
RestartServer = Callable[[str], Awaitable[str]]
"""Clears a server's crash-loop hold and starts it; its state after (`Gateway.restart_server`).
Raises KeyError for an unknown server, ValueError when it is not held down."""
Readiness = Callable[[], Awaitable[dict[str, Any]]]
"""The gateway's full `/readyz` report (servers, their limits and last exits)."""
Handler = Callable[[Request, AdminIdentity], Awaitable[Response]]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = ""
    always: bool = False


def _error(status: int, code: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status, headers=headers)


class AdminApi:
    """Builds the Starlette app; `app` is the ASGI callable the gateway mounts."""

    def __init__(
        self,
        approvals: ApprovalStore,
        admin_tokens: AdminTokenStore,
        agent_authenticator: AgentAuthenticator,
        events: EventSink,
        *,
        limits_usage: LimitsUsage | None = None,
        restart_server: RestartServer | None = None,
        readiness: Readiness | None = None,
    ) -> None:
        self.approvals = approvals
        self.limits_usage = limits_usage
        self.restart_server = restart_server
        self.readiness = readiness
        self.admin_tokens = admin_tokens
        self.agent_authenticator = agent_authenticator
        self.events = events
        self.app = Starlette(
            routes=[
                Route(f"{PREFIX}/openapi.json", self._openapi, methods=["GET"]),
                Route(f"{PREFIX}/whoami", self._guard(Role.VIEWER, self._whoami), methods=["GET"]),
                Route(f"{PREFIX}/approvals", self._guard(Role.VIEWER, self._list), methods=["GET"]),
                Route(f"{PREFIX}/approvals/{{id}}", self._guard(Role.VIEWER, self._show), methods=["GET"]),
                Route(
                    f"{PREFIX}/approvals/{{id}}/approve",
                    self._guard(Role.APPROVER, self._approve),
                    methods=["POST"],
                ),
                Route(f"{PREFIX}/approvals/{{id}}/deny", self._guard(Role.APPROVER, self._deny), methods=["POST"]),
                Route(f"{PREFIX}/rules", self._guard(Role.VIEWER, self._rules), methods=["GET"]),
                Route(f"{PREFIX}/rules/{{id}}", self._guard(Role.ADMIN, self._revoke_rule), methods=["DELETE"]),
                Route(f"{PREFIX}/limits", self._guard(Role.VIEWER, self._limits), methods=["GET"]),
                Route(f"{PREFIX}/servers/{{name}}/restart", self._guard(Role.ADMIN, self._restart), methods=["POST"]),
                Route(f"{PREFIX}/readiness", self._guard(Role.VIEWER, self._readiness), methods=["GET"]),
            ]
        )

    def _guard(self, needed: Role, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization")
            token = header[7:].strip() if header and header[:7].lower() == "bearer " else None
            identity = self.admin_tokens.verify(token) if token else None
            if identity is None:
                if header is not None and await self.agent_authenticator(header) is not None:
                    return _error(403, "forbidden", "agent credentials cannot use the admin API")
                description = "missing bearer token" if header is None else "invalid or revoked admin token"
                return _error(401, "unauthorized", description, {"WWW-Authenticate": 'Bearer realm="bastion-admin"'})
            if not identity.may(needed):
                needs = f"this needs the {needed.label} role; the token has {identity.role.label}"
                return _error(403, "forbidden", needs)
            return await handler(request, identity)

        return endpoint

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def _whoami(self, request: Request, identity: AdminIdentity) -> Response:
        return JSONResponse({"id": identity.id, "name": identity.name, "role": identity.role.label})

    async def _list(self, request: Request, identity: AdminIdentity) -> Response:
        state_text = request.query_params.get("state")
        try:
            state = ApprovalState(state_text) if state_text else None
        except ValueError:
            return _error(400, "bad_request", "state must be pending, approved, denied or expired")
        return JSONResponse({"approvals": [a.as_dict() for a in self.approvals.list(state)]})

    async def _show(self, request: Request, identity: AdminIdentity) -> Response:
        approval = self.approvals.get(request.path_params["id"])
        if approval is None:
            return _error(404, "not_found", "no such approval")
        return JSONResponse(approval.as_dict())

    async def _approve(self, request: Request, identity: AdminIdentity) -> Response:
        return await self._decide(request, identity, approve=True)

    async def _deny(self, request: Request, identity: AdminIdentity) -> Response:
        return await self._decide(request, identity, approve=False)

    async def _decide(self, request: Request, identity: AdminIdentity, *, approve: bool) -> Response:
        raw = await request.body()
        try:
            body = DecisionBody.model_validate_json(raw) if raw.strip() else DecisionBody()
        except ValidationError as exc:
            return _error(400, "bad_request", f"invalid body: {exc.errors()[0]['msg']}")
        if body.always and not approve:
            return _error(400, "bad_request", "`always` applies to approvals only")
        approval_id = request.path_params["id"]
        if self.approvals.get(approval_id) is None:
            return _error(404, "not_found", "no such approval")
        try:
            decided = decide(
                self.approvals,
                self.events,
                approval_id,
                approve=approve,
                decided_by=f"api:{identity.name}",
                reason=body.reason,
                always=body.always,
                via="api",
            )
        except ApprovalError as exc:
            return _error(409, "conflict", str(exc))
        return JSONResponse(decided.as_dict())

    async def _rules(self, request: Request, identity: AdminIdentity) -> Response:
        rules: list[dict[str, Any]] = [
            {
                "id": r.id,
                "agent": r.agent,
                "server": r.server,
                "tool": r.tool,
                "arguments": dict(r.arguments),
                "created_by": r.created_by,
                "created_at": r.created_at,
                "reason": r.reason,
                "approval_id": r.approval_id,
            }
            for r in self.approvals.rules()
        ]
        return JSONResponse({"rules": rules})

    async def _revoke_rule(self, request: Request, identity: AdminIdentity) -> Response:
        if not self.approvals.revoke_rule(request.path_params["id"]):
            return _error(404, "not_found", "no such active rule")
        return Response(status_code=204)

    async def _limits(self, request: Request, identity: AdminIdentity) -> Response:
        if self.limits_usage is None:
            return JSONResponse({"storage": None, "limits": []})
        try:
            report = await self.limits_usage()
        except Exception as exc:  # the storage (Redis) cannot be read
            return _error(503, "unavailable", f"the rate-limit counters cannot be read: {type(exc).__name__}: {exc}")
        return JSONResponse(report)

    async def _restart(self, request: Request, identity: AdminIdentity) -> Response:
        name = request.path_params["name"]
        if self.restart_server is None:
            return _error(404, "not_found", f"no server named {name!r}")
        try:
            state = await self.restart_server(name)
        except KeyError:
            return _error(404, "not_found", f"no server named {name!r}")
        except ValueError as exc:
            return _error(409, "conflict", str(exc))
        return JSONResponse({"server": name, "state": state, "restarted_by": f"api:{identity.name}"})

    async def _readiness(self, request: Request, identity: AdminIdentity) -> Response:
        if self.readiness is None:
            return _error(404, "not_found", "no gateway readiness here")
        report = await self.readiness()
        return JSONResponse(report, status_code=200 if report.get("ready") else 503)
