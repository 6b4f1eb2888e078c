"""A call through `/mcp` meets the guards the same call meets at `/servers/<name>/mcp` (issue 18):
a policy rule on the real names holds it for a person, whose approval (from the `bastion
approvals` CLI, another process) names the real server and tool; a per-tool rate limit on
`server/tool` counts calls through both endpoints together. Real mcp-server-time, real SDK client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bastion.approvals.events import ApprovalRequested
from bastion.approvals.model import ApprovalState
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.conftest import BASTION, VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.test_approvals import WaitableSink, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

POLICY = {
    "rules": [
        {
            "name": "tokyo-needs-a-person",
            "match": {"server": "time", "tool": "get_current_time"},
            "when": {"arguments.timezone": {"glob": "Asia/Tokyo"}},
            "action": "ask",
        }
    ]
}


@asynccontextmanager
async def aggregate_client(gateway: Gateway, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(f"{gateway.base_url}/mcp", http_client=http), mode="legacy") as client,
    ):
        yield client


async def test_a_held_call_through_mcp_is_approved_under_its_real_names(tmp_path: Path) -> None:
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config_path = write_config(tmp_path, servers, policy=POLICY)
    sink = WaitableSink()
    results: list[Any] = []
    with anyio.fail_after(90):
        async with serving(Gateway(load_config(config_path), events=sink)) as gateway:
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("tokyo-bot")
            async with aggregate_client(gateway, token) as client, anyio.create_task_group() as tg:

                async def agent() -> None:
                    results.append(await client.call_tool("time__get_current_time", {"timezone": "Asia/Tokyo"}))

                tg.start_soon(agent)
                requested = await sink.wait_for(ApprovalRequested)
                approval = requested.approval
                assert (approval.server, approval.tool, approval.rule) == (
                    "time",
                    "get_current_time",
                    "policy/rule:tokyo-needs-a-person",
                )
                done = await anyio.run_process(
                    [BASTION, "approvals", "approve", approval.id, "--config", str(config_path)], check=False
                )
                assert done.returncode == 0, done.stderr.decode()
            assert gateway.approvals is not None
            decided = gateway.approvals.get(approval.id)
    [result] = results
    assert result.is_error is False, text_of(result)
    assert "Asia/Tokyo" in text_of(result)
    assert decided is not None
    assert decided.state == ApprovalState.APPROVED


async def test_a_per_tool_limit_counts_both_endpoints_together(tmp_path: Path) -> None:
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config = load_config(write_config(tmp_path, servers, limits={"per_tool": {"time/get_current_time": "2/hour"}}))
    with anyio.fail_after(90):
        async with serving(Gateway(config)) as gateway:
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("counted")
            async with aggregate_client(gateway, token) as aggregate, http_client(gateway, "time", token) as direct:
                first = await aggregate.call_tool("time__get_current_time", {"timezone": "UTC"})
                second = await direct.call_tool("get_current_time", {"timezone": "UTC"})
                third = await aggregate.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert (first.is_error, second.is_error) == (False, False)
    assert third.is_error is True
    assert "rate limit" in text_of(third)
