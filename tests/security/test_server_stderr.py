"""Issue 13 item 5: a server cannot write into Bastion's log.

The probe prints a line dressed as a Bastion warning (with ANSI escapes, a carriage return
and a title-setting sequence). It must land in the server's own log file, readable with
`bastion servers logs`, and reach Bastion's console only prefixed `[server NAME]` and cleaned.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from bastion.runtime.sandbox import bubblewrap_problem
from bastion.runtime.server_log import server_log_path
from tests.e2e.conftest import LineReader, run_cli
from tests.security.running import NETWORKS, bastion_up, http_agent, stderr_pipe, wrap_params

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

MARKER = "forged-by-the-probe"
FAKE_LOG_LINE = f"2026-12-06 00:45:30,178 WARNING bastion.upstream.upstream: {MARKER}"
FORGED = f"\x1b]0;bastion\x07\r\x1b[2K{FAKE_LOG_LINE} \x1b[31mdown\x1b[0m"


async def shout_and_check(client: Client, output: LineReader) -> None:
    result = await client.call_tool("shout", {"text": FORGED})
    assert not result.is_error, result
    line = await anyio.to_thread.run_sync(output.wait_for, re.escape(MARKER), 60)
    shown = line.string
    assert shown.startswith("[server probe] "), repr(shown)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", shown), repr(shown)
    assert shown.endswith(f"{MARKER} down")


def check_log_file(data_dir: Path, config: Path | None) -> None:
    path = server_log_path(data_dir, "probe")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert FORGED.encode() in path.read_bytes()
    if config is not None:
        shown = run_cli("servers", "logs", "probe", "-n", "3", "--config", str(config))
        assert shown.returncode == 0, shown.stderr
        assert f"{FAKE_LOG_LINE} down" in shown.stdout.splitlines()
        assert "\x1b" not in shown.stdout


async def test_bastion_up_keeps_a_servers_stderr_out_of_its_own_log(tmp_path):
    with bastion_up(tmp_path, NETWORKS["none"]) as (_, output, url):
        with anyio.fail_after(120):
            async with http_agent(url) as client:
                await shout_and_check(client, output)
        check_log_file(tmp_path / "data", tmp_path / "bastion.yaml")


async def test_bastion_wrap_keeps_a_servers_stderr_out_of_its_own_log(tmp_path):
    params = wrap_params(tmp_path, "probe", NETWORKS["none"])
    output, errlog = stderr_pipe()
    with errlog, anyio.fail_after(120):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            errlog.close()
            await shout_and_check(client, output)
    check_log_file(tmp_path / "data", None)
