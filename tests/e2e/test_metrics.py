"""`/metrics` of a real `bastion up` in front of the real mcp-server-time, after real calls.

The counters are read with prometheus_client's own parser and must move by exactly the calls
made: allowed, failed, denied by a rule, rate-limited, held for approval, and the approved
retry. `/metrics` needs an admin token (any role); an agent's token is refused; the
`metrics.listen` listener serves the same page without authentication and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.clients import connect
from tests.e2e.conftest import VENV_BIN, RunningGateway, start_gateway, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

POLICY = {
    "profile": "recommended",
    "rules": [
        {
            "name": "no-tokyo",
            "match": {"tool": "get_current_time"},
            "when": {"arguments.timezone": {"equals": "Asia/Tokyo"}},
            "action": "deny",
        },
        {
            "name": "ask-paris",
            "match": {"tool": "get_current_time"},
            "when": {"arguments.timezone": {"equals": "Europe/Paris"}},
            "action": "ask",
        },
    ],
}


@pytest.fixture(scope="module")
def metrics_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("metrics")
    config = write_config(
        folder,
        {"time": {"command": str(VENV_BIN / "mcp-server-time")}},
        agents={"ops": {}},
        policy=POLICY,
        approvals={"wait": 0},
        limits={"per_tool": {"convert_time": "1/hour"}},
        metrics={"listen": "127.0.0.1:0"},
    )
    running = start_gateway(config)
    try:
        yield running
    finally:
        running.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def calls(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str, tool: str) -> float:
    key = ("bastion_tool_calls_total", (("outcome", outcome), ("server", "time"), ("tool", tool)))
    return found.get(key, 0.0)


async def test_counters_move_by_exactly_the_calls_made(metrics_gateway: RunningGateway) -> None:
    gateway = metrics_gateway
    admin = gateway.cli("admin", "token", "create", "--name", "prom", "--role", "viewer")
    assert admin.returncode == 0, admin.stderr
    viewer = admin.stdout.strip().splitlines()[-1]
    approver = gateway.cli("admin", "token", "create", "--name", "ops", "--role", "approver")
    approver_token = approver.stdout.strip().splitlines()[-1]
    convert = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/London"}
    with anyio.fail_after(90):
        async with httpx2.AsyncClient(timeout=30) as http:
            before = samples((await http.get(f"{gateway.base_url}/metrics", headers=gateway.headers(viewer))).text)
            async with connect(gateway, "time") as client:
                ok = [await client.call_tool("get_current_time", {"timezone": "UTC"}) for _ in range(2)]
                failed = await client.call_tool("get_current_time", {"timezone": "Not/AZone"})
                denied = await client.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
                first_convert = await client.call_tool("convert_time", convert)
                limited = await client.call_tool("convert_time", convert)
                held = await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
                approvals = await http.get(
                    f"{gateway.base_url}/admin/api/approvals?state=pending", headers=gateway.headers(approver_token)
                )
                (pending,) = approvals.json()["approvals"]
                decided = await http.post(
                    f"{gateway.base_url}/admin/api/approvals/{pending['id']}/approve",
                    headers=gateway.headers(approver_token),
                )
                assert decided.status_code == 200, decided.text
                approved = await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
            after_text = (await http.get(f"{gateway.base_url}/metrics", headers=gateway.headers(viewer))).text
    assert [r.is_error for r in ok] == [False, False]
    assert failed.is_error
    assert denied.is_error
    assert limited.is_error
    assert held.is_error
    assert first_convert.is_error is False
    assert approved.is_error is False
    after = samples(after_text)

    def moved(outcome: str, tool: str) -> float:
        return calls(after, outcome, tool) - calls(before, outcome, tool)

    assert moved("allowed", "get_current_time") == 2
    assert moved("failed", "get_current_time") == 1
    assert moved("denied", "get_current_time") == 1
    assert moved("held", "get_current_time") == 1
    assert moved("approved", "get_current_time") == 1
    assert moved("allowed", "convert_time") == 1
    assert moved("rate_limited", "convert_time") == 1
    duration = ("bastion_tool_call_duration_seconds_count", (("server", "time"),))
    assert after[duration] - before.get(duration, 0.0) == 8
    assert after[("bastion_upstream_up", (("server", "time"),))] == 1
    assert after[("bastion_approvals_pending", ())] == 0
    assert after[("bastion_audit_events_total", ())] > before[("bastion_audit_events_total", ())]
    assert after[("bastion_audit_write_seconds_count", ())] >= 8  # each tools/call is written ahead
    checks = {labels for name, labels in after if name == "bastion_guard_duration_seconds_count"}
    assert (("check", "policy"),) in checks
    assert (("check", "rate-limit"),) in checks
    assert ("bastion_egress_blocked_total", (("server", "time"),)) in after
    assert ("bastion_audit_queue_depth", ()) in after
    assert ("bastion_agent_sessions", (("server", "time"),)) in after
    assert "Paris" not in after_text
    assert "Tokyo" not in after_text
    assert "ops" not in after_text  # no agent name without metrics.per_agent


async def test_metrics_need_an_admin_token(metrics_gateway: RunningGateway) -> None:
    gateway = metrics_gateway
    with anyio.fail_after(30):
        async with httpx2.AsyncClient(timeout=30) as http:
            anonymous = await http.get(f"{gateway.base_url}/metrics")
            agent = await http.get(f"{gateway.base_url}/metrics", headers=gateway.headers())
            wrong = await http.get(f"{gateway.base_url}/metrics", headers=gateway.headers("bsa_nope"))
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert agent.status_code == 403
    assert "bastion_tool_calls" not in anonymous.text + agent.text + wrong.text


async def test_the_metrics_listener_serves_metrics_only(metrics_gateway: RunningGateway) -> None:
    gateway = metrics_gateway
    url = gateway.stdout.wait_for(r"^Metrics: (http://\S+/metrics)", 5)[1] if not _seen(gateway) else _seen(gateway)
    base = url.removesuffix("/metrics")
    with anyio.fail_after(30):
        async with httpx2.AsyncClient(timeout=30) as http:
            page = await http.get(url)
            other = await http.get(f"{base}/servers/time/mcp", headers=gateway.headers())
            admin = await http.get(f"{base}/admin/api/approvals")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    assert any(f.name == "bastion_upstream_up" for f in text_string_to_metric_families(page.text))
    assert other.status_code == 404
    assert admin.status_code == 404


def _seen(gateway: RunningGateway) -> str | None:
    for line in gateway.stdout.lines:
        if line.startswith("Metrics: http://"):
            return line.split()[1]
    return None
