"""A hostile MCP server, sandboxed by Bastion, tries to get out; every attempt fails.

Issue 6 tests: credentials and Bastion's database stay hidden, writes land only where
allowed, there is no network but the egress proxy (no loopback, no DNS), the proxy lets out
only allowlisted names, and the bombs and the hang are contained, killed and restarted.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.runtime.egress.proxy import ResolverForTests
from bastion.runtime.events import EgressAllowed, EgressBlocked, RecordingSink, ServerExited, ServerRestarted
from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import SERVERS_DIR, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.sandbox_fixtures import local_site

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

FAKE_KEY = "-----BEGIN FAKE PRIVATE KEY----- do-not-leak"
SECRET = "s3cret-token-from-the-environment"
PIDS = 32


@asynccontextmanager
async def hostile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site_port: int, **sandbox: Any
) -> AsyncIterator[tuple[Client, RecordingSink, Path]]:
    """A gateway in this process serving the hostile server; yields a client, the event sink and the home."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(FAKE_KEY)
    (home / "notes.txt").write_text("an ordinary file")
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HOSTILE_TOKEN", SECRET)
    server = {
        "command": sys.executable,
        "args": [str(SERVERS_DIR / "hostile_server.py")],
        "env": {"API_TOKEN": "${HOSTILE_TOKEN}"},
        "sandbox": {
            "network": "allowlist",
            "allow_domains": ["allowed.test"],
            "read_only": [str(tmp_path)],
            "writable": [str(tmp_path / "out")],
            **sandbox,
        },
        "health": {"interval": 0.5, "timeout": 2},
        "restart": {"backoff": 0.1, "backoff_max": 1, "max_restarts": 10, "window": 120},
    }
    # The policy's catalogue would refuse most of these attempts before they reached the
    # server; audit-only lets them through, so what is tested here is the sandbox itself.
    config = load_config(write_config(tmp_path, {"hostile": server}, policy={"profile": "audit-only"}))
    sink = RecordingSink()
    resolver = ResolverForTests({"allowed.test": ("127.0.0.1", site_port)})
    gateway = Gateway(config, runtime_sink=sink, test_resolver=resolver)
    async with serving(gateway):
        assert gateway.tokens is not None
        _, token = gateway.tokens.create("tester")
        async with http_client(gateway, "hostile", token) as client:
            yield client, sink, home


async def call(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    return str(result.content[0].text)  # type: ignore[union-attr]


def command_lines() -> str:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(lines)


async def test_secrets_reach_the_server_by_environment_only_and_are_never_logged(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.DEBUG), local_site() as (port, _), anyio.fail_after(60):
        async with hostile(tmp_path, monkeypatch, port) as (client, _sink, _home):
            assert await call(client, "env_digest", name="API_TOKEN") == hashlib.sha256(SECRET.encode()).hexdigest()
            assert await call(client, "env_digest", name="HOSTILE_TOKEN") == "(unset)"
            running = command_lines()
    assert "hostile_server.py" in running, "the scan saw the sandboxed server"
    assert SECRET not in running, "a secret is on a command line"
    assert SECRET not in caplog.text


async def test_files_credentials_and_bastion_data_stay_out_of_reach(tmp_path, monkeypatch):
    with local_site() as (port, _), anyio.fail_after(60):
        async with hostile(tmp_path, monkeypatch, port) as (client, _sink, home):
            # Control: an ordinary file in a folder it was given is readable.
            assert await call(client, "read_file", path=str(home / "notes.txt")) == "ok: an ordinary file"
            secret = await call(client, "read_file", path=str(home / ".ssh" / "id_rsa"))
            assert secret.startswith("refused"), secret
            database = await call(client, "read_file", path=str(tmp_path / "data" / "audit.db"))
            assert database.startswith("refused"), database
            config = await call(client, "read_file", path=str(tmp_path / "bastion.yaml"))
            assert "data_dir" not in config, config
            assert (await call(client, "write_file", path=str(tmp_path / "out" / "a.txt"), text="x")).startswith("ok")
            for outside in (tmp_path / "escaped.txt", home / "escaped.txt", Path("/usr/escaped.txt")):
                written = await call(client, "write_file", path=str(outside), text="x")
                assert written.startswith("refused"), (outside, written)
                assert not outside.exists()
            names = (await call(client, "environment")).split()
            assert "HTTPS_PROXY" in names
            assert not {"PYTEST_CURRENT_TEST", "VIRTUAL_ENV"} & set(names), names
    assert (tmp_path / "out" / "a.txt").read_text() == "x"


async def test_network_only_through_the_proxy_and_only_to_allowlisted_names(tmp_path, monkeypatch):
    with local_site() as (port, seen), anyio.fail_after(60):
        async with hostile(tmp_path, monkeypatch, port) as (client, sink, _home):
            allowed = await call(client, "fetch", url="http://allowed.test/page")
            assert allowed == "ok: hello from the allowlisted site", allowed
            assert seen == ["allowed.test /page"]
            # Off the allowlist, through the proxy: refused by the proxy.
            for url in ("http://blocked.test/", f"http://127.0.0.1:{port}/", "http://169.254.169.254/latest/"):
                refused = await call(client, "fetch", url=url)
                assert refused.startswith("refused"), (url, refused)
                assert "403" in refused, (url, refused)
            # Around the proxy: there is no route, not even to the host's loopback, and no DNS.
            around = await call(client, "fetch", url="http://allowed.test/page", use_proxy=False)
            assert around.startswith("refused"), around
            assert (await call(client, "connect_tcp", host="127.0.0.1", port=port)).startswith("refused")
            assert (await call(client, "resolve", name="example.com")).startswith("refused")
            assert seen == ["allowed.test /page"], "only the allowlisted fetch reached the site"
            blocked = await sink.wait_for(EgressBlocked, 3)
    assert {(e.host, e.port) for e in blocked} == {("blocked.test", 80), ("127.0.0.1", port), ("169.254.169.254", 80)}
    assert all(e.server == "hostile" for e in blocked)
    [out] = sink.of_type(EgressAllowed)
    assert (out.host, out.port, out.method, out.address) == ("allowed.test", 80, "GET", "127.0.0.1")
    assert out.bytes_out > 0
    assert out.bytes_in > len("hello from the allowlisted site")


@pytest.mark.parametrize("bomb", ["fork_bomb", "memory_bomb", "hang"])
async def test_bombs_and_hangs_are_contained_then_restarted(tmp_path, monkeypatch, bomb):
    count_file = tmp_path / "out" / "forks"
    limits = {"pids": PIDS, "memory": "128M", "cpu": 0.5}
    with local_site() as (port, _), anyio.fail_after(90):
        async with hostile(tmp_path, monkeypatch, port, **limits) as (client, sink, _home):
            arguments = {"count_file": str(count_file)} if bomb == "fork_bomb" else {}
            with pytest.raises(Exception, match=r"stopped while handling this request|closed"):
                await client.call_tool(bomb, arguments)
            [exited] = await sink.wait_for(ServerExited)
            await sink.wait_for(ServerRestarted)
            assert await call(client, "echo", text="back") == "back"
    if bomb == "fork_bomb":
        forks = int(count_file.read_text())
        assert 0 < forks < PIDS, f"the fork bomb made {forks} processes under a limit of {PIDS}"
    expected = {"fork_bomb": "hung", "hang": "hung", "memory_bomb": "memory limit|hung"}[bomb]
    assert exited.reason.startswith("hung") or "memory" in exited.reason, exited
    assert any(word in exited.reason for word in expected.split("|")), exited
