"""`/mcp` when a server goes down and comes back (issue 18): it drops out of `tools/list` with
`notifications/tools/list_changed`, calls to its tools get a clear error, and it rejoins with
another notice. A real server (mcp-server-time behind a switch script), a real SDK client."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.events import RecordingSink, ServerGaveUp
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_a_server_that_goes_down_drops_out_and_comes_back(tmp_path):
    switch = tmp_path / "switch"
    switch.mkdir()
    (switch / "on").write_text("")
    script = tmp_path / "server.sh"
    script.write_text(f'#!/bin/sh\n[ -f "{switch}/on" ] && exec "{VENV_BIN / "mcp-server-time"}"\nexit 3\n')
    script.chmod(0o755)
    flaky = {
        "command": str(script),
        "health": {"interval": 60},
        "restart": {"backoff": 0.05, "backoff_max": 0.1, "max_restarts": 1, "window": 60},
        "sandbox": {"read_only": [str(switch)]},
    }
    steady = {"command": str(VENV_BIN / "mcp-server-time")}
    config = load_config(write_config(tmp_path, {"flaky": flaky, "steady": steady}))
    sink = RecordingSink()
    send, notices = anyio.create_memory_object_stream[str](100)

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            send.send_nowait("tools")

    with anyio.fail_after(120):
        async with serving(Gateway(config, runtime_sink=sink)) as gateway:
            _, token = gateway.tokens.create("ops")
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
                Client(
                    streamable_http_client(f"{gateway.base_url}/mcp", http_client=http),
                    mode="legacy",
                    message_handler=on_message,
                ) as client,
            ):
                before = {t.name for t in (await client.list_tools()).tools}
                assert {"flaky__get_current_time", "steady__get_current_time"} <= before

                (switch / "on").unlink()
                gateway.upstreams["flaky"].kill("the test stops it")
                await notices.receive()  # it went down
                await sink.wait_for(ServerGaveUp)
                while True:  # the failed restarts' notices, if any
                    try:
                        notices.receive_nowait()
                    except anyio.WouldBlock:
                        break
                down = {t.name for t in (await client.list_tools()).tools}
                assert "steady__get_current_time" in down
                assert not any(name.startswith("flaky__") for name in down)
                with pytest.raises(MCPError, match=r"'flaky'.*unavailable"):
                    await client.call_tool("flaky__get_current_time", {"timezone": "UTC"})

                (switch / "on").write_text("")
                assert await gateway.restart_server("flaky") == "up"
                await notices.receive()  # it came back
                after = {t.name for t in (await client.list_tools()).tools}
                assert "flaky__get_current_time" in after
