"""`bastion wrap` starts its server's sandbox before it loads the gateway, and the upstream adopts
that process (issue 16, item 2: the server boots while Bastion does, instead of after it)."""

from __future__ import annotations

import sys
import threading

import anyio
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.prestart import prestart
from bastion.runtime.sandbox import bubblewrap_problem
from bastion.runtime.server_runtime import RuntimeSettings
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]


def prestarted(tmp_path, server: dict[str, object]):
    config = load_config(write_config(tmp_path, {"time": server}))
    settings = RuntimeSettings(config.data_dir, config_file=config.source)
    stdio = config.servers["time"]
    return config, prestart("time", stdio, settings, str(server["command"]), sys.stderr)  # type: ignore[arg-type]


async def test_the_gateway_adopts_the_prestarted_server(tmp_path):
    config, early = prestarted(tmp_path, {"command": str(VENV_BIN / "mcp-server-time")})
    assert early is not None
    with anyio.fail_after(60):
        async with serving(Gateway(config, prestarted={"time": early})) as gateway:
            upstream = gateway.upstreams["time"]
            assert early.adopted
            assert upstream.state == "up"
            assert upstream.starts == 1
            assert "memory" in upstream.limits_in_force()
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "time", token) as client:
                result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert not result.is_error
    assert early.process.poll() is not None  # stopped with the gateway
    assert list((config.data_dir / "run").iterdir()) == []  # its status file released


def stderr_readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "stderr-time" and thread.is_alive()]


async def test_an_adopted_server_has_one_stderr_reader_which_stops_with_the_gateway(tmp_path):
    """The prestarted process's stderr capture becomes the server's (restarts write there too):
    no second reader on the same log file, and none left running after the gateway stops."""
    config, early = prestarted(tmp_path, {"command": str(VENV_BIN / "mcp-server-time")})
    assert early is not None
    with anyio.fail_after(60):
        async with serving(Gateway(config, prestarted={"time": early})) as gateway:
            assert early.adopted
            assert len(stderr_readers()) == 1
            runtime = gateway.upstreams["time"].runtime
            assert runtime is not None
            assert runtime.stderr is early.stderr.stream
    assert stderr_readers() == []


@pytest.mark.parametrize(
    "server",
    [
        {"command": str(VENV_BIN / "mcp-server-time"), "sandbox": "off"},
        {"command": str(VENV_BIN / "mcp-server-time"), "sandbox": {"network": "allowlist"}},
    ],
)
def test_no_prestart_without_a_sandbox_or_with_egress(tmp_path, server):
    _, early = prestarted(tmp_path, server)
    assert early is None


def test_a_prestarted_server_nobody_adopted_is_stopped_and_released(tmp_path):
    config, early = prestarted(tmp_path, {"command": str(VENV_BIN / "mcp-server-time")})
    assert early is not None
    early.discard()
    assert early.process.poll() is not None
    assert list((config.data_dir / "run").iterdir()) == []
