"""Real Bastion processes for the adversarial tests: `bastion up` and `bastion wrap` serving the probe."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import BASTION, STARTUP_TIMEOUT, LineReader, write_config
from tests.security.sandbox_probe import PROBE_COMMAND, SECRET, SECRET_NAME

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


def wrap_pid(marker: str) -> int:
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


def stderr_pipe() -> tuple[LineReader, TextIO]:
    """A pipe for a process's stderr: the lines read from it, and the end to hand the process."""
    read_end, write_end = os.pipe()
    return LineReader(open(read_end, encoding="utf-8", errors="replace")), open(write_end, "w", encoding="utf-8")


def wrap_params(tmp_path: Path, marker: str, sandbox: dict[str, Any]) -> StdioServerParameters:
    """`bastion wrap` serving the probe as `marker` (also how `wrap_pid` finds it), debug logging on."""
    options = [f"--allow-domain={domain}" for domain in sandbox.get("allow_domains", [])]
    env = {
        "BASTION_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BASTION_DEBUG": "1",
        SECRET_NAME: SECRET,
    }
    args = ["wrap", "--name", marker, *options, "--", *PROBE_COMMAND]
    return StdioServerParameters(command=BASTION, args=args, env=env, cwd=tmp_path)
