"""`bastion servers logs NAME`: a server's stderr log, read back cleaned; wrong names are clear errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bastion.cli.main import main
from bastion.runtime.server_log import RotatingLog, server_log_path
from tests.e2e.conftest import BASTION, LineReader

SERVERS = {"time": {"command": "true"}, "remote": {"url": "https://mcp.example.com/mcp"}}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "servers": SERVERS}))
    return path


def test_servers_logs_prints_the_last_lines_cleaned(config):
    log = RotatingLog(server_log_path(config.parent / "data", "time"), max_bytes=200, backups=2)
    for number in range(20):
        log.write_line(f"\x1b[33mline {number:02}\x1b[0m".encode())
    log.close()
    for args in (["servers", "logs", "time", "-n", "3", "--config", str(config)],
                 ["servers", "--config", str(config), "logs", "time", "-n", "3"]):  # fmt: skip
        done = CliRunner().invoke(main, args)
        assert done.exit_code == 0, done.output
        assert done.output.splitlines() == ["line 17", "line 18", "line 19"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "no server named 'nope'"),
        ("remote", "keeps no log"),
    ],
)
def test_servers_logs_refuses_what_has_no_log(config, name, message):
    done = CliRunner().invoke(main, ["servers", "logs", name, "--config", str(config)])
    assert done.exit_code == 2
    assert message in done.output


def test_servers_logs_of_a_quiet_server(config):
    done = CliRunner().invoke(main, ["servers", "logs", "time", "--config", str(config)])
    assert done.exit_code == 0
    assert "has printed nothing on stderr yet" in done.output


def test_servers_logs_follow_prints_new_lines_across_rotations(config):
    log = RotatingLog(server_log_path(config.parent / "data", "time"), max_bytes=100, backups=1)
    log.write_line(b"before")
    log.flush()
    command = [BASTION, "servers", "logs", "time", "--follow", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        output = LineReader(process.stdout)
        output.wait_for("^before$", 30)
        log.write_line(b"\x1b[31mnew line\x1b[0m")
        log.flush()
        output.wait_for("^new line$", 30)
        log.write_line(b"x" * 120)  # rotates: the next line is in a new file
        log.write_line(b"after the rotation")
        log.flush()
        output.wait_for("^after the rotation$", 30)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
