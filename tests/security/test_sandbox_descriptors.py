"""Issue 13 item 1: a sandboxed server holds nothing of Bastion's, at first start and after a restart.

A real probe server runs in the real sandbox, behind a real `bastion up` (both network
modes) and a real `bastion wrap`. It reports what it was born with, what every process it
can see holds and what `pidfd_getfd` can take from them, its environment and its mounts;
then it crashes, the supervisor restarts it, and it reports again. Bastion's descriptors
are read on the host, from the gateway's own `/proc/PID/fd`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import LineReader
from tests.security.running import NETWORKS, bastion_up, http_agent, stderr_pipe, wrap_params, wrap_pid
from tests.security.sandbox_probe import crash, probe

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]


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


@pytest.mark.parametrize("network", NETWORKS)
async def test_bastion_wrap_sandbox_holds_nothing_of_bastions(tmp_path, network):
    marker = f"probe-{tmp_path.name}"
    params = wrap_params(tmp_path, marker, NETWORKS[network])
    output, errlog = stderr_pipe()
    with errlog, anyio.fail_after(120):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            errlog.close()  # the wrap process holds its own copy
            pid = wrap_pid(marker)

            @asynccontextmanager
            async def same_client() -> AsyncIterator[Client]:
                yield client

            problems = await probe_then_restart_then_probe(same_client, output, pid, tmp_path / "data")
    assert problems == [], "\n".join(problems)
