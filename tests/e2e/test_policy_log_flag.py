"""The log flag reaches the audit log: set on the verdict and completion of calls a rule marks, not on others.

The gateway runs in-process; the front door, mcp-server-time, the client and the SQLite
audit store are real, and the events are read back from the store.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.webhooks import webhook_receiver

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_log_flag_is_recorded_in_the_audit_log(tmp_path: Path) -> None:
    policy = {
        "rules": [
            {
                "name": "watch-tokyo",
                "match": {"tool": "get_current_time"},
                "when": {"arguments.timezone": {"equals": "Asia/Tokyo"}},
                "action": "allow",
                "log": True,
            }
        ]
    }
    config = load_config(
        write_config(tmp_path, {"time": {"command": str(VENV_BIN / "mcp-server-time")}}, policy=policy)
    )
    gateway = Gateway(config)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("watcher")
            async with http_client(gateway, "time", token) as client:
                tokyo = await client.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
                utc = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert tokyo.is_error is False
    assert utc.is_error is False
    query = EventQuery(types=("call.verdict", "call.completed"), tool="get_current_time")
    events = [event_record(decode_row(row)) for row in gateway.audit.rows(query, newest_first=False)]
    decided = [(e["type"], e["rule"], e["log"]) for e in events if (e["rule"] or "").startswith("policy/")]
    assert decided == [
        ("call.verdict", "policy/rule:watch-tokyo", True),
        ("call.completed", "policy/rule:watch-tokyo", True),
        ("call.verdict", "policy/profile:recommended", False),
        ("call.completed", "policy/profile:recommended", False),
    ]


@pytest.mark.parametrize(
    ("which", "expected"),
    [("findings", ["sql.bulk_export"]), ("all", ["sql.bulk_export", "rule:watch-tokyo"]), ("off", [])],
)
async def test_flagged_calls_alert(tmp_path: Path, which: str, expected: list[str]) -> None:
    """A call allowed but marked `log` raises `call_flagged` at a real webhook, as `alerts.call_flagged` says."""
    policy = {
        "catalogue": {"sql.bulk_export": "log"},
        "rules": [
            {
                "name": "watch-tokyo",
                "match": {"tool": "get_current_time"},
                "when": {"arguments.timezone": {"equals": "Asia/Tokyo"}},
                "action": "allow",
                "log": True,
            }
        ],
    }
    time_server = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    async with webhook_receiver() as hooks:
        alerts = {"webhooks": [{"url": hooks.url}], "coalesce_window": 0, "backoff": 0.05, "call_flagged": which}
        gateway = Gateway(load_config(write_config(tmp_path, time_server, policy=policy, alerts=alerts)))
        with anyio.fail_after(60):
            async with serving(gateway):
                assert gateway.tokens is not None
                _, token = gateway.tokens.create("reader")
                async with http_client(gateway, "time", token) as client:
                    await client.call_tool("get_current_time", {"timezone": "SELECT * FROM customers LIMIT 100000"})
                    await client.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
                    await client.call_tool("get_current_time", {"timezone": "UTC"})
                    denied = await client.call_tool("get_current_time", {"timezone": "DROP TABLE customers"})
                await hooks.wait_for_kind("call_denied")
                flagged = await hooks.wait_for_count("call_flagged", len(expected))
    assert denied.is_error is True
    checks = sorted(a["details"]["check"].removeprefix("policy/").removeprefix("catalogue:") for a in flagged)
    assert checks == sorted(expected)
    for alert in flagged:
        assert alert["severity"] == "warning"
        assert alert["details"]["agent"] == "reader"
        assert alert["summary"].startswith("flagged reader -> time/get_current_time: ")
