"""The log flag reaches the recorder: `CallFinished.log` is set on calls a rule marks, not on others.

The gateway runs in-process so the test can watch what the recorder hands the (real, SQLite)
audit store; the front door, mcp-server-time and the client are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.audit.store import AuditStore
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.model import CallFinished, CallStarted
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


class WatchedStore:
    """The real store, with every `finish` event kept for the test to read."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.finished: list[CallFinished] = []

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def start(self, event: CallStarted, *, durable: bool) -> None:
        await self.store.start(event, durable=durable)

    async def finish(self, event: CallFinished) -> None:
        self.finished.append(event)
        await self.store.finish(event)

    async def check_writable(self) -> bool:
        return await self.store.check_writable()

    def export(self) -> Iterator[dict[str, Any]]:
        return self.store.export()


async def test_log_flag_is_handed_to_the_audit_store(tmp_path: Path) -> None:
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
    watched = WatchedStore(gateway.audit)
    gateway.audit = watched
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("watcher")
            async with http_client(gateway, "time", token) as client:
                tokyo = await client.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
                utc = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert tokyo.is_error is False
    assert utc.is_error is False
    calls = [e for e in watched.finished if e.check is not None and e.check.startswith("policy/")]
    assert [(e.outcome, e.check, e.log) for e in calls] == [
        ("allowed", "policy/rule:watch-tokyo", True),
        ("allowed", "policy/profile:recommended", False),
    ]
