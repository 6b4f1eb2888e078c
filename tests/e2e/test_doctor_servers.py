"""`bastion doctor --config FILE` starts each configured server's sandbox up to the exec and says,
per server, what would fail and the fix (issue 16, item 1)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import VENV_BIN, run_cli, write_config
from tests.e2e.test_sandbox_install_paths import venv_with_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]


@pytest.fixture
def under_tmp() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="bastion-doctor-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def server_lines(stdout: str) -> dict[str, tuple[str, str]]:
    found = re.findall(r"^server (\S+)\s+(ok|FAIL)\s+(.*)$", stdout, flags=re.MULTILINE)
    return {name: (status, detail) for name, status, detail in found}


def test_doctor_reports_each_servers_sandbox_with_the_fix(tmp_path, under_tmp):
    hidden = tmp_path / "data" / "srv"
    hidden.parent.mkdir(parents=True)
    hidden.write_text("#!/bin/sh\n")
    hidden.chmod(0o755)
    servers = {
        "time": {"command": str(VENV_BIN / "mcp-server-time")},
        "tmpvenv": {"command": str(venv_with_server(under_tmp))},
        "fetch": {
            "command": str(VENV_BIN / "mcp-server-fetch"),
            "sandbox": {"network": "allowlist", "allow_domains": ["example.com"]},
        },
        "hidden": {"command": str(hidden)},
        "missing": {"command": "/nonexistent/server"},
        "badcwd": {"command": str(VENV_BIN / "mcp-server-time"), "cwd": "/nonexistent/folder"},
        "off": {"command": str(VENV_BIN / "mcp-server-time"), "sandbox": "off"},
    }
    done = run_cli("doctor", "--config", str(write_config(tmp_path, servers)))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = server_lines(done.stdout)
    assert {name: status for name, (status, _) in lines.items()} == {
        "time": "ok",
        "tmpvenv": "ok",
        "fetch": "ok",
        "hidden": "FAIL",
        "missing": "FAIL",
        "badcwd": "FAIL",
        "off": "ok",
    }, done.stdout
    assert "which the sandbox hides" in lines["hidden"][1]
    assert "install the server elsewhere" in lines["hidden"][1]
    assert "not found on this host" in lines["missing"][1]
    assert "bwrap: Can't chdir to /nonexistent/folder" in lines["badcwd"][1]
    assert "WITHOUT a sandbox" in lines["off"][1]
