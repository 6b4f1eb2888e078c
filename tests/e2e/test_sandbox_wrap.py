"""`bastion wrap -- CMD` sandboxes the command too; options open exactly what is asked."""

from __future__ import annotations

import sys

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import BASTION, SERVERS_DIR, run_cli

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

HOSTILE = [sys.executable, str(SERVERS_DIR / "hostile_server.py")]


async def write_through_wrap(tmp_path, options: list[str], target) -> str:
    env = {"BASTION_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    params = StdioServerParameters(command=BASTION, args=["wrap", *options, "--", *HOSTILE], env=env, cwd=tmp_path)
    with anyio.fail_after(60):
        async with Client(params) as client:
            result = await client.call_tool("write_file", {"path": str(target), "text": "x"})
    return str(result.content[0].text)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "writes"),
    [
        ([], False),
        (["--writable", "{out}"], True),
        (["--no-sandbox"], True),
    ],
)
async def test_wrap_writes_only_where_allowed(tmp_path, options, writes):
    out = tmp_path / "out"
    out.mkdir()
    answer = await write_through_wrap(tmp_path, [o.format(out=out) for o in options], out / "file.txt")
    assert answer.startswith("ok") is writes, answer
    assert (out / "file.txt").exists() is writes


def test_wrap_rejects_a_bad_domain_and_sandbox_options_with_server():
    bad = run_cli("wrap", "--allow-domain", "http://x.test/", "--", "true")
    assert bad.returncode == 2
    assert "domain" in bad.stderr
    mixed = run_cli("wrap", "--server", "time", "--no-sandbox", "--config", "/nonexistent.yaml")
    assert mixed.returncode == 2
    assert "sandbox options apply to a command" in mixed.stderr
