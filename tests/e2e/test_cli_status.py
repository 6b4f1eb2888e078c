"""`bastion servers` and `bastion doctor` against a running gateway and this host."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e


def test_servers_lists_each_upstream_with_its_live_state(gateway):
    done = gateway.cli("servers")
    assert done.returncode == 0, done.stderr
    table, _, details = done.stdout.partition("\n\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
    assert rows["time"][1:5] == ["up", "stdio", "none", "0"]
    assert rows["git"][1] == "up"
    assert "mcp-server-time" in done.stdout
    if "everything" in rows:
        assert rows["everything"][3] == "allowlist"
    # Below the table: the limits in force for each server, and the mechanism.
    assert "time:\n  limits:    cpu 1 CPU (" in details
    assert "memory 512M (" in details


def test_servers_says_when_the_gateway_is_not_running(tmp_path):
    config = write_config(tmp_path, {"time": {"command": "mcp-server-time"}})
    text = config.read_text().replace("127.0.0.1:0", "127.0.0.1:9")
    config.write_text(text)
    done = run_cli("servers", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "not running" in done.stdout
    assert "time" in done.stdout


def test_doctor_reports_the_host(gateway):
    done = gateway.cli("doctor")
    findings = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for name in ("python", "sqlite", "bubblewrap", "limits", "config"):
        assert name in findings, done.stdout
    assert "FTS5" in findings["sqlite"]
    assert "writable" in done.stdout
    assert done.returncode == 0, done.stdout
