"""Every metric is documented, and the Grafana dashboard queries only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bastion.observability.metrics import GatewayMetrics, LiveReadings, ServerReading

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "observability.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "bastion.json"


def exposed() -> dict[str, str]:
    """Each metric's exposed name (counters with `_total`) and its type."""
    metrics = GatewayMetrics(["db"])
    metrics.attach(LiveReadings(lambda: [ServerReading("db", True, 0, 1)], lambda: 0, lambda: 0))
    names = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        names[family.name + ("_total" if family.type == "counter" else "")] = family.type
    return names


def test_every_metric_is_documented() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name in exposed():
        assert f"`{name}`" in docs, f"{name} is not in docs/observability.md"


def test_the_issue_names_are_all_there() -> None:
    assert set(exposed()) >= {
        "bastion_tool_calls_total",
        "bastion_tool_call_duration_seconds",
        "bastion_guard_duration_seconds",
        "bastion_upstream_up",
        "bastion_upstream_restarts_total",
        "bastion_approvals_pending",
        "bastion_egress_blocked_total",
        "bastion_audit_events_total",
        "bastion_audit_write_seconds",
        "bastion_audit_queue_depth",
        "bastion_agent_sessions",
    }


def test_the_dashboard_queries_only_real_metrics_and_shows_them_all() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for e in expressions for name in re.findall(r"bastion_\w+", e)}
    assert used == set(exposed())
