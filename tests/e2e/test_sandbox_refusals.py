"""Servers Bastion refuses or stops restarting: no bubblewrap, a crash loop; and `sandbox: off` is loud.

Issue 6: a host without bubblewrap refuses sandboxed servers with a message saying how to
install it or opt out; a server that keeps dying is restarted with backoff until the
crash-loop limit, then held down, and calls fail at once with the reason.
"""

from __future__ import annotations

import logging
import sys

import anyio
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime import sandbox
from bastion.runtime.events import (
    RecordingSink,
    SandboxDisabled,
    ServerExited,
    ServerGaveUp,
    ServerRestarted,
    ServerStarted,
)
from tests.e2e.conftest import SERVERS_DIR, VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_without_bubblewrap_a_sandboxed_server_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else "/bin/true")
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config = load_config(write_config(tmp_path, servers))
    with anyio.fail_after(30):
        async with serving(Gateway(config)) as gateway:
            upstream = gateway.upstreams["time"]
            assert upstream.state in ("failed", "restarting")
            assert upstream.last_error is not None
            assert "apt-get install bubblewrap" in upstream.last_error
            assert "sandbox: off" in upstream.last_error


async def test_sandbox_off_is_explicit_and_warned(tmp_path, caplog):
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time"), "sandbox": "off"}}
    config = load_config(write_config(tmp_path, servers))
    sink = RecordingSink()
    with caplog.at_level(logging.WARNING), anyio.fail_after(30):
        async with serving(Gateway(config, runtime_sink=sink)) as gateway:
            assert gateway.upstreams["time"].state == "up"
            [started] = await sink.wait_for(ServerStarted)
    assert sink.of_type(SandboxDisabled) == [SandboxDisabled("time", at=sink.of_type(SandboxDisabled)[0].at)]
    assert started.sandboxed is False
    assert any("WITHOUT a sandbox" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


async def test_a_crash_loop_is_restarted_with_backoff_then_held_down(tmp_path):
    crashy = {
        "command": sys.executable,
        "args": [str(SERVERS_DIR / "crashy_server.py")],
        "health": {"interval": 60},
        "restart": {"backoff": 0.05, "backoff_max": 0.2, "max_restarts": 2, "window": 60},
    }
    config = load_config(write_config(tmp_path, {"crashy": crashy}))
    sink = RecordingSink()
    with anyio.fail_after(60):
        async with serving(Gateway(config, runtime_sink=sink)) as gateway:
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "crashy", token) as client:
                for _ in range(3):
                    with pytest.raises(Exception, match="stopped while handling this request"):
                        await client.call_tool("die_midway", {})
                [gave_up] = await sink.wait_for(ServerGaveUp)
                with pytest.raises(Exception, match="crash loop"):
                    await client.call_tool("echo", {"text": "anyone?"})
            upstream = gateway.upstreams["crashy"]
            assert upstream.state == "crash-loop"
            report = await gateway.readiness()
    exits = sink.of_type(ServerExited)
    assert [e.reason for e in exits] == ["exited with code 3"] * 3
    assert gave_up.restarts == 2
    # Exponential backoff: each failure within the window doubles the wait (up to backoff_max).
    assert [r.after_seconds for r in sink.of_type(ServerRestarted)] == [0.05, 0.1]
    assert report["servers"]["crashy"] == "crash-loop"
    assert report["runtime"]["crashy"]["restarts"] == 2
    assert report["runtime"]["crashy"]["last_exit"] == "exited with code 3"
    assert report["runtime"]["crashy"]["limits"]["memory"].startswith("512M")
