"""End-to-end fixtures: a real `bastion up` process in front of real MCP servers.

Servers: `mcp-server-time` and `mcp-server-git` (PyPI), `@modelcontextprotocol/server-everything`
(npm, via npx), and `crashy` (a small real SDK server in tests/e2e/servers for crash and
cancellation tests). Agents connect with the SDK's own `mcp.Client`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from tests.e2e.audit_calls import calls_of

VENV_BIN = Path(sys.executable).parent
BASTION = str(VENV_BIN / "bastion")
SERVERS_DIR = Path(__file__).parent / "servers"
EVERYTHING_PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"
INSPECTOR_PACKAGE = "@modelcontextprotocol/inspector@0.15.0"
STARTUP_TIMEOUT = 120.0


def server_table(git_repo: Path, data_dir: Path, npm_cache: Path, scratch: Path) -> dict[str, Any]:
    """The upstreams every e2e gateway serves, each in its default sandbox plus what it needs.

    git reads the test repository (under the sandbox's private /tmp otherwise); crashy reads
    Bastion's audit database for the write-ahead proof and writes markers in the tests'
    `scratch` folder; npx fetches from the npm registry
    through the egress proxy into a cache shared by the test session.
    """
    table: dict[str, Any] = {
        "time": {"command": str(VENV_BIN / "mcp-server-time")},
        "git": {
            "command": str(VENV_BIN / "mcp-server-git"),
            "args": ["--repository", str(git_repo)],
            "sandbox": {"read_only": [str(git_repo)]},
        },
        "crashy": {
            "command": sys.executable,
            "args": [str(SERVERS_DIR / "crashy_server.py")],
            "sandbox": {"read_only": [str(data_dir)], "writable": [str(scratch)]},
        },
    }
    if shutil.which("npx"):
        table["everything"] = {
            "command": "npx",
            "args": ["-y", EVERYTHING_PACKAGE],
            "env": {"npm_config_cache": str(npm_cache)},
            "sandbox": {
                "network": "allowlist",
                "allow_domains": ["registry.npmjs.org", *non_public_addresses("registry.npmjs.org")],
                "writable": [str(npm_cache)],
                "memory": "1G",
            },
        }
    return table


def non_public_addresses(host: str) -> list[str]:
    """Addresses of `host` the egress proxy refuses unless listed (some CI networks reach npm via a mirror)."""
    try:
        infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        return []
    addresses = {str(info[4][0]) for info in infos}
    return sorted(a for a in addresses if not ipaddress.ip_address(a).is_global)


@pytest.fixture(scope="session")
def npm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An npm cache for the sandboxed npx servers of this test session (filled through the egress proxy)."""
    return tmp_path_factory.mktemp("npm-cache")


def write_config(folder: Path, servers: dict[str, Any], **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"listen": "127.0.0.1:0", "data_dir": str(folder / "data"), "servers": servers, **extra}
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASTION, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


class LineReader:
    """Collects a process's output lines on a thread, so tests can wait for a line with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line matching {pattern!r} within {timeout} s; got: {self.lines[-20:]}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError(f"output ended before {pattern!r}; got: {self.lines[-20:]}")
            self.lines.append(line)
            if match := regex.search(line):
                return match


@dataclass
class RunningGateway:
    """A `bastion up` process and what a test needs to talk to it."""

    config_path: Path
    base_url: str
    token: str
    process: subprocess.Popen[str]
    stdout: LineReader
    data_dir: Path
    extra_tokens: dict[str, str] = field(default_factory=dict)

    def url(self, server: str, suffix: str = "mcp") -> str:
        return f"{self.base_url}/servers/{server}/{suffix}"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def status_headers(self) -> dict[str, str]:
        """What opens `/readyz` in full: the gateway's status key, as `bastion servers` sends it."""
        return {"Authorization": f"Bearer {(self.data_dir / 'status.key').read_text(encoding='utf-8').strip()}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--config", str(self.config_path))

    def create_token(self, agent: str, servers: str | None = None, expires: str | None = None) -> str:
        args = ["token", "create", "--agent", agent]
        if servers is not None:
            args += ["--servers", servers]
        if expires is not None:
            args += ["--expires", expires]
        done = self.cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event, oldest first, through `bastion audit export`."""
        done = self.cli("audit", "export", "--format", "jsonl")
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def audit_records(self) -> list[dict[str, Any]]:
        """One record per request (its call.requested and call.completed events joined)."""
        return calls_of(self.audit_events())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            finally:  # a Ctrl-C while waiting too: the child is never left behind
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait(timeout=5)


def start_gateway(config_path: Path) -> RunningGateway:
    """Start `bastion up` and wait (bounded) until it prints its URL and first token."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [BASTION, "up", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env=env,
    )
    reader = LineReader(process.stdout)
    try:
        base_url = reader.wait_for(r"serving on (http://\S+)", STARTUP_TIMEOUT)[1]
        token = reader.wait_for(r"^(bst_\S+)$", 10)[1]
    except BaseException:
        process.kill()
        raise
    data_dir = Path(yaml.safe_load(config_path.read_text())["data_dir"])
    return RunningGateway(config_path, base_url, token, process, reader, data_dir)


@pytest.fixture(scope="session")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    (repo / "README.md").write_text("hello\n")
    subprocess.run(["git", "-C", str(repo), "add", "README.md"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "first commit"], check=True, env=env)
    return repo


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, git_repo: Path, npm_cache: Path) -> Iterator[RunningGateway]:
    """One gateway shared by the e2e tests that only read (each test uses its own agent token)."""
    folder = tmp_path_factory.mktemp("gateway")
    config = write_config(folder, server_table(git_repo, folder / "data", npm_cache, tmp_path_factory.getbasetemp()))
    running = start_gateway(config)
    try:
        ready = httpx2.get(f"{running.base_url}/readyz", headers=running.status_headers(), timeout=10).json()
        assert ready["audit_store"] == "writable", ready
        yield running
    finally:
        running.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
