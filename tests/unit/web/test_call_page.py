"""The call page reads as a person would tell the call: who, what, when, verdict, approval, latency, payloads."""

from __future__ import annotations

import re
import time
from html import unescape
from typing import Any

import pytest

from bastion.admin.tokens import Role
from bastion.alerts.model import Alert, AlertKind
from bastion.audit.events import (
    ApprovalDecided,
    ApprovalRequested,
    ApprovalUsed,
    AuditEvent,
    AuthFailed,
    CallCompleted,
    CallRequested,
    EgressBlocked,
    VerdictReached,
)
from bastion.web.tree import tree
from tests.unit.web.conftest import Dash

pytestmark = pytest.mark.anyio

GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 4
DEEP = "[" * 5000 + "]" * 5000
TAGS = re.compile(r"<[^>]+>")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(TAGS.sub(" ", html)))


async def record(dash: Dash, *events: AuditEvent) -> None:
    for event in events:
        await dash.audit.record(event)


def common(call: str, at: float) -> dict[str, Any]:
    return {"agent": "crm-bot", "server": "crm", "correlation_id": call, "time": at}


async def test_a_denied_call_names_the_rule_and_reason_and_the_egress_and_alert_of_its_time(dash: Dash) -> None:
    at = time.time()
    c = common("call-d", at)
    await record(
        dash,
        CallRequested(method="tools/call", tool="export", arguments={"table": "customers"}, transport="stdio", **c),
        VerdictReached(tool="export", verdict="deny", rule="policy/rule:no-exports", reason="bulk export", **c),
        EgressBlocked(time=at, server="crm", host="evil.example", port=443, method="CONNECT", reason="off allowlist"),
        EgressBlocked(time=at, server="other", host="elsewhere.example", port=443, method="CONNECT"),
        CallCompleted(method="tools/call", tool="export", outcome="denied", latency_ms=2.25, error="bulk export", **c),
    )
    refusal = {"server": "crm", "tool": "export", "check": "policy/rule:no-exports", "reason": "bulk export"}
    for agent, reason in (("crm-bot", "bulk export"), ("other-bot", "bulk export"), ("crm-bot", "another refusal")):
        details = {**refusal, "agent": agent, "reason": reason}
        dash.alerts.emit(Alert(AlertKind.CALL_DENIED, f"denied {agent} -> crm/export: {reason}", details, time=at))
    http, _ = await dash.signed_in(Role.VIEWER)

    page = await http.get("/ui/audit/events/1")

    assert page.status_code == 200
    shown = text_of(page.text)
    assert "Denied crm/export" in shown
    assert "Who crm-bot over stdio" in shown
    assert "deny by policy/rule:no-exports bulk export" in shown
    assert "Latency 2.2 ms" in shown or "Latency 2.3 ms" in shown
    assert "Refused: the server was never called." in shown
    assert "CONNECT evil.example:443 off allowlist (its server, while the call ran)" in shown
    assert "elsewhere.example" not in shown
    assert "denied crm-bot -> crm/export: bulk export" in shown
    assert "other-bot" not in shown
    assert "another refusal" not in shown
    assert '<details id="raw-events">' in page.text  # one click away, folded
    assert shown.count("call.requested") == 1


@pytest.mark.parametrize(
    ("endpoint", "shown"), [("aggregate", "through /mcp"), ("virtual:support", "through virtual:support")]
)
async def test_a_call_through_an_aggregate_endpoint_says_so(dash: Dash, endpoint: str, shown: str) -> None:
    c = common("call-a", time.time())
    await record(
        dash,
        CallRequested(method="tools/call", tool="lookup", transport="streamable-http", endpoint=endpoint, **c),
        CallCompleted(method="tools/call", tool="lookup", outcome="allowed", latency_ms=1.0, endpoint=endpoint, **c),
    )
    http, _ = await dash.signed_in(Role.VIEWER)

    page = await http.get("/ui/audit/events/1")

    assert f"Who crm-bot over streamable-http {shown}" in text_of(page.text)


async def test_a_held_then_approved_call_says_who_approved_it_and_when(dash: Dash) -> None:
    at = time.time()
    c = common("call-h", at)
    later = {**c, "time": at + 7}
    await record(
        dash,
        CallRequested(method="tools/call", tool="refund", arguments={"amount": 500}, **c),
        ApprovalRequested(approval_id="apv1", tool="refund", reason="big refund", rule="policy/rule:big", **c),
        ApprovalDecided(
            time=at + 5,
            agent="crm-bot",
            server="crm",
            approval_id="apv0",
            verdict="deny",
            decided_by="dashboard:someone-else",
            tool="refund",
        ),
        ApprovalDecided(
            time=at + 7,
            agent="crm-bot",
            server="crm",
            approval_id="apv1",
            verdict="allow",
            decided_by="dashboard:alice",
            tool="refund",
            reason="known customer",
            via="dashboard",
        ),
        ApprovalUsed(approval_id="apv1", tool="refund", decided_by="dashboard:alice", **later),
        VerdictReached(tool="refund", verdict="allow", approval_id="apv1", **later),
        CallCompleted(
            method="tools/call",
            tool="refund",
            outcome="allowed",
            latency_ms=7012.0,
            approval_id="apv1",
            result={"content": [{"type": "text", "text": '{"refunded": 500}'}]},
            **later,
        ),
    )
    http, _ = await dash.signed_in(Role.VIEWER)

    page = await http.get("/ui/audit/events/1")

    shown = text_of(page.text)
    assert "Approved crm/refund" in shown
    assert "Held" in shown
    assert "by policy/rule:big : big refund" in shown
    assert re.search(r"approved by dashboard:alice at \S+ \S+ UTC via dashboard known customer", shown), shown
    assert "someone-else" not in shown
    assert "Latency 7012.0 ms" in shown
    assert "refunded : 500" in shown  # the JSON text of the result, drawn as a tree


async def test_a_non_tool_call_shows_its_method(dash: Dash) -> None:
    c = common("call-i", time.time())
    await record(
        dash,
        CallRequested(method="initialize", arguments={"protocolVersion": "2025-11-25"}, **c),
        CallCompleted(method="initialize", outcome="allowed", latency_ms=1.0, **c),
    )
    http, _ = await dash.signed_in(Role.VIEWER)

    shown = text_of((await http.get("/ui/audit/events/2")).text)
    listed = text_of((await http.get("/ui/audit")).text)

    assert "Allowed crm/initialize" in shown
    assert "no guard verdict (not a tool call)" in shown
    assert "crm initialize" in listed
    assert " - " not in listed.split("Detail", 1)[1]


async def test_an_event_of_no_call_is_shown_alone(dash: Dash) -> None:
    await record(dash, EgressBlocked(server="crm", host="evil.example", port=443, method="CONNECT"))
    http, _ = await dash.signed_in(Role.VIEWER)

    page = await http.get("/ui/audit/events/1")

    assert page.status_code == 200
    assert "evil.example" in page.text
    assert '<details id="raw-events" open>' in page.text


@pytest.mark.parametrize(
    ("value", "shown", "hidden"),
    [
        ({"api_key": "hunter2hunter2"}, "[REDACTED]", "hunter2"),
        ({"note": f"use {GITHUB_TOKEN} please"}, "[REDACTED:github-token]", GITHUB_TOKEN),
        ({"content": [{"type": "text", "text": '{"password": "swordfish1"}'}]}, "[REDACTED]", "swordfish1"),
        ({"zone": "<script>alert(1)</script>"}, "&lt;script&gt;", "<script>"),
        (
            {"a": {"b": {"c": {"d": [1, True, None, ""]}}}},
            '<span class="lit">true</span>',
            '<details open><summary><span class="key">d</span>',
        ),
        ({"deep": DEEP, "content": [{"type": "text", "text": DEEP}]}, "deep", "Traceback"),
    ],
    ids=["secret-key", "secret-format", "secret-in-json-text", "escaped", "deep-levels-folded", "nested-too-deep"],
)
def test_the_tree_masks_escapes_and_folds(value: Any, shown: str, hidden: str) -> None:
    html = str(tree(value))

    assert shown in html
    assert hidden not in html


async def test_a_secret_quoted_in_a_reason_or_an_alert_is_masked_everywhere_on_the_page(dash: Dash) -> None:
    """Only payloads are redacted when stored; a refusal's reason may quote what it refused."""
    at = time.time()
    c = common("call-s", at)
    reason = f"token {GITHUB_TOKEN} in the query"
    await record(
        dash,
        CallRequested(method="tools/call", tool="query", arguments={"q": "x"}, **c),
        VerdictReached(tool="query", verdict="deny", rule="policy/catalogue:secret", reason=reason, **c),
        CallCompleted(method="tools/call", tool="query", outcome="denied", latency_ms=1.0, error=reason, **c),
    )
    details = {"agent": "crm-bot", "server": "crm", "tool": "query", "reason": reason}
    details["check"] = "policy/catalogue:secret"
    dash.alerts.emit(Alert(AlertKind.CALL_DENIED, f"denied crm-bot -> crm/query: {reason}", details, time=at))
    http, _ = await dash.signed_in(Role.VIEWER)

    page = await http.get("/ui/audit/events/1")

    assert GITHUB_TOKEN not in page.text
    shown = text_of(page.text)
    assert "token [REDACTED:github-token] in the query" in shown
    assert "denied crm-bot -> crm/query: token [REDACTED:github-token]" in shown  # the alert, matched once masked
    await record(dash, AuthFailed(reason=f"invalid credential {GITHUB_TOKEN}", path="/mcp"))
    listed = await http.get("/ui/audit")
    assert GITHUB_TOKEN not in listed.text
    assert "reason: invalid credential [REDACTED:github-token]" in text_of(listed.text)
