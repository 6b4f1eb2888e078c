"""Issue 16, item 1: a server installed under /tmp starts sandboxed, and a sandbox that cannot
start the server says why in bubblewrap's own words.

The sandbox replaces /tmp with an empty folder. A server in a virtualenv under /tmp (a clone
there, a private temp folder) is shown read-only inside: its command, its interpreter and
the virtualenv. A command the sandbox hides stays hidden, and the reason is the sandbox's
message (`bwrap: execvp ...`) in the agent's error, the readiness report (`bastion servers`),
the `server.gave_up` audit event and its alert.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from bastion.alerts.from_events import alert_for
from bastion.audit.chain import decode_row
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.audit_events import runtime_audit_event
from bastion.runtime.events import RecordingSink, ServerGaveUp
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.test_upstream_failure import mcp_error_in

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def venv_with_server(folder: Path) -> Path:
    """A virtualenv in `folder` with `mcp-server-time` installed as a console script; its command."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    # The packages come from the test environment (offline); the server and interpreter are the venv's.
    (Path(purelib) / "test_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = (VENV_BIN / "mcp-server-time").read_text().split("\n", 1)[1]
    command = venv / "bin" / "mcp-server-time"
    command.write_text(f"#!{python}\n{script}")
    command.chmod(0o755)
    return command


@pytest.fixture
def under_tmp() -> Iterator[Path]:
    """A folder under /tmp itself (pytest's own may be configured elsewhere)."""
    folder = Path(tempfile.mkdtemp(prefix="bastion-install-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_server_in_a_venv_under_tmp_starts_sandboxed(under_tmp, tmp_path):
    command = venv_with_server(under_tmp)
    config = load_config(write_config(tmp_path / "gw", {"time": {"command": str(command)}}))
    with anyio.fail_after(60):
        async with serving(Gateway(config)) as gateway:
            upstream = gateway.upstreams["time"]
            assert upstream.last_error is None
            assert upstream.state == "up"
            assert upstream.sandboxed
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            async with http_client(gateway, "time", token) as client:
                result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert not result.is_error


async def test_when_the_sandbox_cannot_start_the_server_its_own_message_is_the_cause(tmp_path):
    # Inside Bastion's data folder, which the sandbox always hides: bubblewrap cannot exec it.
    hidden = tmp_path / "gw" / "data" / "bin" / "server"
    hidden.parent.mkdir(parents=True)
    hidden.write_text("#!/bin/sh\nexit 0\n")
    hidden.chmod(0o755)
    server = {
        "command": str(hidden),
        "health": {"interval": 60},
        "restart": {"backoff": 0.05, "backoff_max": 0.1, "max_restarts": 1, "window": 60},
    }
    config = load_config(write_config(tmp_path / "gw", {"hidden": server}))
    sink = RecordingSink()
    expected = f"bwrap: execvp {hidden}: No such file or directory"
    with anyio.fail_after(60):
        async with serving(Gateway(config, runtime_sink=sink)) as gateway:
            [gave_up] = await sink.wait_for(ServerGaveUp)
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            with pytest.raises((MCPError, BaseExceptionGroup)) as refused:
                async with http_client(gateway, "hidden", token) as client:
                    await client.list_tools()
            report = await gateway.readiness()
            await gateway.audit.flush()
            query = EventQuery(types=("server.gave_up",))
            [audited] = [decode_row(row) for row in gateway.audit.rows(query, newest_first=False)]
    alert = alert_for(runtime_audit_event(gave_up))
    assert alert is not None
    assert expected in alert.summary
    assert expected in audited.details["reason"]
    refusal = mcp_error_in(refused.value).error.message
    assert "crash loop" in refusal
    assert expected in refusal
    assert expected in gave_up.reason
    assert expected in report["runtime"]["hidden"]["last_exit"]
    assert "Connection closed" not in gave_up.reason
