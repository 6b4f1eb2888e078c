"""Issue 13 item 1: a sandboxed server holds nothing of Bastion's, at first start and after a restart.

A real probe server runs in the real sandbox, behind a real `bastion up` (both network
modes) and a real `bastion wrap`. It reports what it was born with, what every process it
can see holds and what `pidfd_getfd` can take from them, its environment and its mounts;
then it crashes, the supervisor restarts it, and it reports again. Bastion's descriptors
are read on the host, from the gateway's own `/proc/PID/fd`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import BASTION, STARTUP_TIMEOUT, LineReader, write_config
from tests.security.sandbox_probe import PROBE_COMMAND, SECRET, SECRET_NAME, crash, probe

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

RESTART = {"backoff": 0.1, "backoff_max": 1, "max_restarts": 10, "window": 120}
NETWORKS: dict[str, dict[str, Any]] = {
    "none": {"network": "none"},
    "allowlist": {"network": "allowlist", "allow_domains": ["allowed.test"]},
}


@contextmanager
def bastion_up(tmp_path: Path, sandbox: dict[str, Any]) -> Iterator[tuple[subprocess.Popen[str], LineReader, str]]:
    """A real `bastion up` serving the probe; yields the process, its output (stdout and stderr) and a token."""
    server = {"command": PROBE_COMMAND[0], "args": PROBE_COMMAND[1:], "sandbox": sandbox, "restart": RESTART}
    config = write_config(tmp_path, {"probe": server}, policy={"profile": "audit-only"})
    env = {**os.environ, "PYTHONUNBUFFERED": "1", SECRET_NAME: SECRET}
    process = subprocess.Popen(
        [BASTION, "up", "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    output = LineReader(process.stdout)
    try:
        base_url = output.wait_for(r"serving on (http://\S+)", STARTUP_TIMEOUT)[1]
        token = output.wait_for(r"^(bst_\S+)$", 10)[1]
        yield process, output, f"{base_url}/servers/probe/mcp?token={token}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@asynccontextmanager
async def http_agent(url: str) -> AsyncIterator[Client]:
    endpoint, _, token = url.partition("?token=")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(endpoint, http_client=http), mode="legacy") as client,
    ):
        yield client


async def probe_then_restart_then_probe(
    connect: Any, output: LineReader, bastion_pid: int, data_dir: Path
) -> list[str]:
    problems: list[str] = []
    for start in ("first start", "after a restart"):
        async with connect() as client:
            report = await probe(client)
            problems += [f"{start}: {problem}" for problem in report.check(bastion_pid, data_dir)]
            if start == "first start":
                await crash(client)
                await anyio.to_thread.run_sync(output.wait_for, r"ServerRestarted.*attempt=1", 60)
    return problems


@pytest.mark.parametrize("network", NETWORKS)
async def test_bastion_up_sandbox_holds_nothing_of_bastions(tmp_path, network):
    with bastion_up(tmp_path, NETWORKS[network]) as (process, output, url):
        with anyio.fail_after(120):
            problems = await probe_then_restart_then_probe(
                lambda: http_agent(url), output, process.pid, tmp_path / "data"
            )
    assert problems == [], "\n".join(problems)


def _wrap_pid(marker: str) -> int:
    """The host pid of the `bastion wrap` process whose command line holds `marker`."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in cmdline]
        if "wrap" in words and marker in words and not Path(words[0]).name.startswith("bwrap"):
            return int(entry.name)
    raise LookupError(f"no bastion wrap process with {marker!r}")


def _stderr_pipe() -> tuple[LineReader, TextIO]:
    """A pipe for a process's stderr: the lines read from it, and the end to hand the process."""
    read_end, write_end = os.pipe()
    return LineReader(open(read_end, encoding="utf-8", errors="replace")), open(write_end, "w", encoding="utf-8")


@pytest.mark.parametrize("network", NETWORKS)
async def test_bastion_wrap_sandbox_holds_nothing_of_bastions(tmp_path, network):
    options = ["--allow-domain", "allowed.test"] if network == "allowlist" else []
    marker = f"probe-{tmp_path.name}"
    env = {
        "BASTION_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BASTION_DEBUG": "1",
        SECRET_NAME: SECRET,
    }
    args = ["wrap", "--name", marker, *options, "--", *PROBE_COMMAND]
    params = StdioServerParameters(command=BASTION, args=args, env=env, cwd=tmp_path)
    output, errlog = _stderr_pipe()
    with errlog, anyio.fail_after(120):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            errlog.close()  # the wrap process holds its own copy
            pid = _wrap_pid(marker)

            @asynccontextmanager
            async def same_client() -> AsyncIterator[Client]:
                yield client

            problems = await probe_then_restart_then_probe(same_client, output, pid, tmp_path / "data")
    assert problems == [], "\n".join(problems)
