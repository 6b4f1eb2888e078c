"""What `bastion connect` prints really connects: an SDK client using exactly the printed URL and header.

A real `bastion up` in front of the real mcp-server-time; the OpenClaw entry, Claude Code's
`claude mcp add` line and the Claude Desktop (`bastion wrap`) command are each used as printed.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import VENV_BIN, RunningGateway, start_gateway, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("connect")
    running = start_gateway(write_config(folder, {"time": {"command": str(VENV_BIN / "mcp-server-time")}}))
    try:
        yield running
    finally:
        running.stop()


def printed_json(output: str) -> dict[str, Any]:
    start = output.index("\n{") + 1
    return json.loads(output[start:])


async def call_over_http(url: str, headers: dict[str, str], tool: str = "get_current_time") -> str:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(tool, {"timezone": "UTC"})
    assert result.is_error is False
    return str(result.content[0].text)


async def test_the_openclaw_entry_connects_as_printed(gateway: RunningGateway) -> None:
    done = gateway.cli("connect", "openclaw", "--server", "time")
    assert done.returncode == 0, done.stderr
    entry = printed_json(done.stdout)["mcp"]["servers"]["time"]
    assert entry["transport"] == "streamable-http"
    with anyio.fail_after(60):
        assert "UTC" in await call_over_http(entry["url"], entry["headers"])


async def test_the_all_servers_entry_connects_to_the_aggregate_endpoint_as_printed(gateway: RunningGateway) -> None:
    done = gateway.cli("connect", "openclaw", "--all")
    assert done.returncode == 0, done.stderr
    (entry,) = printed_json(done.stdout)["mcp"]["servers"].values()
    assert entry["url"].endswith("/mcp")
    with anyio.fail_after(60):
        assert "UTC" in await call_over_http(entry["url"], entry["headers"], "time__get_current_time")


async def test_the_claude_code_line_connects_as_printed(gateway: RunningGateway) -> None:
    done = gateway.cli("connect", "claude-code", "--server", "time")
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("claude mcp add")]
    words = shlex.split(line)
    url, header = words[6], words[8]
    name, _, value = header.partition(": ")
    with anyio.fail_after(60):
        assert "UTC" in await call_over_http(url, {name: value})


@pytest.mark.parametrize(
    ("args", "entry_name", "tool"),
    [(("--server", "time"), "time", "get_current_time"), (("--all",), "bastion", "time__get_current_time")],
)
async def test_the_claude_desktop_command_connects_as_printed(
    gateway: RunningGateway, args: tuple[str, ...], entry_name: str, tool: str
) -> None:
    done = gateway.cli("connect", "claude-desktop", *args)
    assert done.returncode == 0, done.stderr
    entry = printed_json(done.stdout)["mcpServers"][entry_name]
    with anyio.fail_after(90):
        async with Client(StdioServerParameters(command=entry["command"], args=entry["args"])) as client:
            result = await client.call_tool(tool, {"timezone": "UTC"})
    assert result.is_error is False
