"""The OpenAPI 3.1 description of the admin API, served at /admin/api/openapi.json."""

from __future__ import annotations

from typing import Any

from bastion import __version__

_RULE_REF = {"$ref": "#/components/schemas/Rule"}
_ERROR = {"$ref": "#/components/schemas/Error"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": _json(_ERROR, "No credential, or not a valid admin token"),
    "403": _json(_ERROR, "An agent credential, or an admin token whose role is too low"),
}

_APPROVAL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "agent", "server", "tool", "arguments", "rule", "reason", "created_at", "expires_at", "state"],
    "properties": {
        "id": {"type": "string", "description": "Short id, as shown to the agent"},
        "agent": {"type": "string"},
        "server": {"type": "string"},
        "tool": {"type": "string"},
        "arguments": {"type": "object", "description": "The held call's arguments"},
        "rule": {"type": "string", "description": "The check or policy rule that asked for approval"},
        "reason": {"type": "string"},
        "created_at": {"type": "number", "description": "Unix time, seconds"},
        "expires_at": {"type": "number"},
        "state": {"type": "string", "enum": ["pending", "approved", "denied", "expired"]},
        "decided_by": {"type": ["string", "null"], "description": "`api:<admin token name>` or `cli:<os user>`"},
        "decided_at": {"type": ["number", "null"]},
        "decision_reason": {"type": ["string", "null"]},
        "always": {"type": "boolean", "description": "Approved with an always-allow rule"},
        "consumed_at": {"type": ["number", "null"], "description": "When the approved call went through"},
    },
}

_RULE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "agent": {"type": "string"},
        "server": {"type": "string"},
        "tool": {"type": "string"},
        "arguments": {"type": "object", "description": "Calls with exactly these arguments pass"},
        "created_by": {"type": "string"},
        "created_at": {"type": "number"},
        "reason": {"type": "string"},
        "approval_id": {"type": "string"},
    },
}

_DECISION: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {"type": "string", "description": "Why; the agent sees it when denied"},
        "always": {"type": "boolean", "default": False, "description": "Approve only: also allow identical calls"},
    },
}


_USAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "limit": {"type": "string", "description": "As configured: `per_agent 60/minute`, `concurrent_per_agent 8`"},
        "agent": {"type": ["string", "null"]},
        "server": {"type": ["string", "null"]},
        "tool": {"type": ["string", "null"], "description": "The glob of a per_tool limit"},
        "used": {"type": "integer"},
        "limit_amount": {"type": "integer"},
        "remaining": {"type": "integer"},
        "resets_in": {"type": ["number", "null"], "description": "Seconds until a call frees up"},
    },
}


def _decide(verb: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": f"{verb.capitalize()} a pending approval (role approver or admin)",
            "operationId": f"{verb}Approval",
            "parameters": [_ID],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _DECISION}}},
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Approval"}, "The decided approval"),
                "400": _json(_ERROR, "Invalid body"),
                "404": _json(_ERROR, "No such approval"),
                "409": _json(_ERROR, "Already decided, or expired"),
                **_ERRORS,
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The admin API's OpenAPI description."""
    approval_ref = {"$ref": "#/components/schemas/Approval"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bastion admin API",
            "version": __version__,
            "description": "Decide held tool calls and inspect always-allow rules. See docs/admin-api.md.",
        },
        "security": [{"adminToken": []}],
        "paths": {
            "/admin/api/whoami": {
                "get": {
                    "summary": "The admin token's name and role",
                    "operationId": "whoami",
                    "responses": {"200": _json({"type": "object"}, "Name, id and role"), **_ERRORS},
                }
            },
            "/admin/api/approvals": {
                "get": {
                    "summary": "List approvals, oldest first",
                    "operationId": "listApprovals",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["pending", "approved", "denied", "expired"]},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {"type": "object", "properties": {"approvals": {"type": "array", "items": approval_ref}}},
                            "The approvals",
                        ),
                        "400": _json(_ERROR, "Unknown state"),
                        **_ERRORS,
                    },
                }
            },
            "/admin/api/approvals/{id}": {
                "get": {
                    "summary": "One approval",
                    "operationId": "getApproval",
                    "parameters": [_ID],
                    "responses": {
                        "200": _json(approval_ref, "The approval"),
                        "404": _json(_ERROR, "No such approval"),
                        **_ERRORS,
                    },
                }
            },
            "/admin/api/approvals/{id}/approve": _decide("approve"),
            "/admin/api/approvals/{id}/deny": _decide("deny"),
            "/admin/api/rules": {
                "get": {
                    "summary": "Active always-allow rules",
                    "operationId": "listRules",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"rules": {"type": "array", "items": _RULE_REF}},
                            },
                            "The rules",
                        ),
                        **_ERRORS,
                    },
                }
            },
            "/admin/api/limits": {
                "get": {
                    "summary": "Each rate-limit counter in use and the calls in flight, against their limits",
                    "operationId": "limitsUsage",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "storage": {"type": ["string", "null"], "description": "Where counters live"},
                                    "limits": {"type": "array", "items": _USAGE},
                                },
                            },
                            "Usage, one row per counter",
                        ),
                        "503": _json(_ERROR, "The rate-limit storage cannot be read"),
                        **_ERRORS,
                    },
                }
            },
            "/admin/api/servers/{name}/restart": {
                "post": {
                    "summary": "Clear a launched server's crash-loop hold and start it now (role admin)",
                    "operationId": "restartServer",
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "server": {"type": "string"},
                                    "state": {"type": "string", "description": "up, or restarting if it failed again"},
                                    "restarted_by": {"type": "string"},
                                },
                            },
                            "The hold is cleared; the server's state after the attempt",
                        ),
                        "404": _json(_ERROR, "No such server"),
                        "409": _json(_ERROR, "Not held down (up, restarting, or an HTTP server)"),
                        **_ERRORS,
                    },
                }
            },
            "/admin/api/readiness": {
                "get": {
                    "summary": "The full readiness report: each server's state, sandbox, limits and last exit",
                    "operationId": "readiness",
                    "responses": {
                        "200": _json({"type": "object"}, "Ready: the report `/readyz` gives an operator"),
                        "503": _json({"type": "object"}, "Not ready: the same report"),
                        **_ERRORS,
                    },
                }
            },
            "/admin/api/rules/{id}": {
                "delete": {
                    "summary": "Revoke an always-allow rule (role admin)",
                    "operationId": "revokeRule",
                    "parameters": [_ID],
                    "responses": {"204": {"description": "Revoked"}, "404": _json(_ERROR, "No such rule"), **_ERRORS},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin token from `bastion admin token create` (bsa_...). Agent tokens get 403.",
                }
            },
            "schemas": {
                "Approval": _APPROVAL,
                "Rule": _RULE,
                "Decision": _DECISION,
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
                },
            },
        },
    }
