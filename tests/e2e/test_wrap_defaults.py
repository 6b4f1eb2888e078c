"""`bastion wrap` behaves like a guest (issue 16, item 2): without a config it keeps its state
in the per-user state folder, not in the folder the agent starts it in, and it logs only
warnings and errors to stderr (which agents collect as the server's noise) unless `-v`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import BASTION, VENV_BIN

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def wrap_once(cwd: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """Run `bastion wrap` as an agent would: one `initialize`, then end of input."""
    return subprocess.run(
        [BASTION, "wrap", *options, "--", str(VENV_BIN / "mcp-server-time")],
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("xdg", "where"),
    [
        (None, "home/.local/state/bastion"),
        ("xdg", "xdg/bastion"),
    ],
)
def test_wrap_without_config_keeps_state_out_of_the_agents_folder(tmp_path, xdg, where):
    agent_folder = tmp_path / "project"
    agent_folder.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    if xdg is not None:
        env["XDG_STATE_HOME"] = str(tmp_path / xdg)
    done = wrap_once(agent_folder, env)
    assert json.loads(done.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "mcp-time", done.stderr
    assert list(agent_folder.iterdir()) == []
    assert (tmp_path / where / "audit.db").is_file()


@pytest.mark.parametrize(("options", "info_logged"), [((), False), (("-v",), True)])
def test_wrap_logs_warnings_only_unless_verbose(tmp_path, options, info_logged):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BASTION_DATA_DIR": str(tmp_path / "data")}
    done = wrap_once(tmp_path, env, *options)
    assert done.stdout.strip(), done.stderr
    assert (" INFO " in done.stderr) is info_logged, done.stderr
