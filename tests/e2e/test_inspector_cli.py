"""The MCP Inspector's CLI, a real third-party client, through `bastion wrap`.

The Inspector reads `--config`/`--server` as its own options, so Bastion's are passed in
the environment (`-e BASTION_CONFIG=... -e BASTION_SERVER=...`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.e2e.conftest import INSPECTOR_PACKAGE, VENV_BIN

pytestmark = pytest.mark.e2e


def inspector(gateway, *args: str, server: str | None = None, command: tuple[str, ...] = ()) -> dict:
    if shutil.which("npx") is None:
        pytest.fail("npx is required for the Inspector test (install Node.js)")
    env_args = ["-e", f"BASTION_CONFIG={gateway.config_path}"]
    if server is not None:
        env_args += ["-e", f"BASTION_SERVER={server}"]
    argv = ["npx", "-y", INSPECTOR_PACKAGE, "--cli", *env_args, str(VENV_BIN / "bastion"), "wrap", *command, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False, env={**os.environ})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_inspector_lists_and_calls_tools_of_a_configured_server(gateway, git_repo):
    listed = inspector(gateway, "--method", "tools/list", server="git")
    assert "git_log" in {t["name"] for t in listed["tools"]}
    called = inspector(
        gateway,
        "--method", "tools/call", "--tool-name", "git_log", "--tool-arg", f"repo_path={git_repo}",
        server="git",
    )  # fmt: skip
    assert called["isError"] is False
    assert "first commit" in called["content"][0]["text"]


def test_inspector_through_wrap_of_a_command(gateway):
    called = inspector(
        gateway,
        "--method", "tools/call", "--tool-name", "get_current_time", "--tool-arg", "timezone=Asia/Tokyo",
        command=(str(VENV_BIN / "mcp-server-time"),),
    )  # fmt: skip
    assert '"timezone": "Asia/Tokyo"' in called["content"][0]["text"]
    records = [r for r in gateway.audit_records() if r["server"] == "mcp-server-time"]
    assert any(r["arguments"] == {"timezone": "Asia/Tokyo"} and r["outcome"] == "allowed" for r in records)
