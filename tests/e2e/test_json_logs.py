"""`log_format: json` in a real `bastion up`: every line Bastion logs is one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import BASTION, STARTUP_TIMEOUT, VENV_BIN, LineReader, write_config

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("how", ["config", "option"])
def test_every_log_line_is_a_json_object(tmp_path: Path, how: str) -> None:
    extra = {"log_format": "json"} if how == "config" else {}
    config = write_config(tmp_path, {"time": {"command": str(VENV_BIN / "mcp-server-time")}}, **extra)
    args = [BASTION, "up", "--config", str(config)] + (["--log-format", "json"] if how == "option" else [])
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        errors = LineReader(process.stderr)
        errors.wait_for(r'"message": "upstream time up', STARTUP_TIMEOUT)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)  # a loaded host can take a while to stop the sandboxed server
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    lines = [json.loads(line) for line in errors.lines if line.strip()]
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    assert any(line["logger"].startswith("bastion.") for line in lines)
