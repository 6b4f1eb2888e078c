"""A clone of Bastion under /tmp works (issue 16, item 1): the README's first steps from there.

The sandbox gives each server a private /tmp, so a Bastion installed under /tmp used to
start its servers from paths that did not exist inside (`scripts/up` printed `[restarting]`,
then `crash-loop`; `scripts/test` failed its first end-to-end tests). This clones the
repository's HEAD into /tmp and makes its virtualenv cheaply and offline (its own
interpreter and console scripts, the packages of the test environment through a `.pth`),
then runs from it what broke: `bastion up` with a server installed in that venv, and
`bastion wrap` of it behind the egress proxy (whose bridge runs Bastion's own interpreter
and script from the clone).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bastion.runtime.sandbox import bubblewrap_problem
from tests.e2e.conftest import VENV_BIN, LineReader

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bubblewrap_problem() is not None, reason=f"no sandbox here: {bubblewrap_problem()}"),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

REPO = Path(__file__).resolve().parents[2]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture(scope="module")
def clone() -> Iterator[Path]:
    """HEAD cloned under /tmp, with a virtualenv whose interpreter and scripts live in the clone."""
    folder = Path(tempfile.mkdtemp(prefix="bastion-clone-", dir="/tmp"))
    try:
        root = folder / "bastion"
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(root)], check=True, timeout=120)
        venv = root / ".venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
        python = venv / "bin" / "python"
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        # The clone's own source first, then the test environment's packages (offline, fast).
        paths = [str(root / "src"), sysconfig.get_paths()["purelib"]]
        (Path(purelib) / "clone.pth").write_text("\n".join(paths) + "\n")
        for script in ("bastion", "mcp-server-time"):
            body = (VENV_BIN / script).read_text().split("\n", 1)[1]
            (venv / "bin" / script).write_text(f"#!{python}\n{body}")
            (venv / "bin" / script).chmod(0o755)
        yield root
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_clone_runs_its_own_code(clone):
    where = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import bastion; print(bastion.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    assert Path(where).is_relative_to(clone / "src")


def test_bastion_up_from_a_clone_under_tmp_starts_its_server(clone, tmp_path):
    # The example config's server, found beside the clone's interpreter (under /tmp).
    config = clone / "bastion.yaml"
    config.write_text(yaml.safe_dump({"listen": "127.0.0.1:0", "servers": {"time": {"command": "mcp-server-time"}}}))
    up = subprocess.Popen(
        [str(clone / ".venv" / "bin" / "bastion"), "up", "--config", str(config)],
        cwd=clone,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = LineReader(up.stdout)
        line = lines.wait_for(r"^\s+time\s.*\[(\S+)\]$", timeout=90)
        assert line.group(1) == "up", "\n".join(lines.lines)
    finally:
        up.terminate()
        up.wait(timeout=30)


def test_bastion_wrap_from_a_clone_under_tmp_runs_the_server_behind_the_egress_bridge(clone, tmp_path):
    done = subprocess.run(
        [
            str(clone / ".venv" / "bin" / "bastion"),
            "wrap",
            "--allow-domain",
            "example.com",
            "--",
            str(clone / ".venv" / "bin" / "mcp-server-time"),
        ],
        input=json.dumps(INITIALIZE) + "\n",
        capture_output=True,
        text=True,
        cwd=clone,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BASTION_DATA_DIR": str(tmp_path / "data")},
        timeout=90,
        check=False,
    )
    answer = json.loads(done.stdout.splitlines()[0]) if done.stdout else {}
    assert answer.get("result", {}).get("serverInfo", {}).get("name") == "mcp-time", done.stdout + done.stderr
