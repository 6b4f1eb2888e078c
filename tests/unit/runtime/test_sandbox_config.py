"""The per-server `sandbox`, `health` and `restart` sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import ConfigError, StdioServerConfig, load_config
from bastion.runtime.config import parse_size


def server(tmp_path: Path, body: str) -> StdioServerConfig:
    path = tmp_path / "bastion.yaml"
    path.write_text(f"servers:\n  s:\n    command: x\n{body}")
    config = load_config(path).servers["s"]
    assert isinstance(config, StdioServerConfig)
    return config


def test_the_sandbox_is_on_by_default(tmp_path):
    sandbox = server(tmp_path, "").sandbox
    assert sandbox.enabled
    assert sandbox.network == "none"
    assert (sandbox.memory, sandbox.cpu, sandbox.pids, sandbox.nofile) == (512 << 20, 1.0, 128, 1024)


@pytest.mark.parametrize("value", ["off", "'off'", "false"])
def test_sandbox_off_must_be_written(tmp_path, value):
    assert not server(tmp_path, f"    sandbox: {value}\n").sandbox.enabled


def test_a_full_section(tmp_path):
    body = (
        "    sandbox:\n      network: allowlist\n      allow_domains: [API.example.com, '*.cdn.test']\n"
        "      writable: [out]\n      read_only: [/srv/data]\n      memory: 1.5G\n      cpu: 0.5\n"
        "      pids: 64\n      nofile: 512\n"
        "    health: {interval: 5, timeout: 1}\n"
        "    restart: {backoff: 2, backoff_max: 10, max_restarts: 3, window: 60}\n"
    )
    config = server(tmp_path, body)
    sandbox = config.sandbox
    assert sandbox.allow_domains == ("api.example.com", "*.cdn.test")
    assert sandbox.writable == ((tmp_path / "out").resolve(),)
    assert sandbox.read_only == (Path("/srv/data"),)
    assert sandbox.memory == 3 << 29
    assert (config.health.interval, config.restart.max_restarts) == (5, 3)


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ("    sandbox: {allow_domains: [a.com]}\n", "servers.s.sandbox", "network: allowlist"),
        ("    sandbox: {network: all}\n", "servers.s.sandbox.network", "none"),
        ("    sandbox: {memory: lots}\n", "servers.s.sandbox.memory", "512M"),
        ("    sandbox: {memory: true}\n", "servers.s.sandbox.memory", "size"),
        ("    sandbox: {pids: 0}\n", "servers.s.sandbox.pids", ""),
        (
            "    sandbox: {network: allowlist, allow_domains: ['http://a.com/']}\n",
            "servers.s.sandbox.allow_domains",
            "domain",
        ),
        ("    sandbox: {netwrok: none}\n", "servers.s.sandbox.netwrok", "network"),
        ("    health: {interval: 0}\n", "servers.s.health.interval", ""),
        ("    restart: {max_restarts: -1}\n", "servers.s.restart.max_restarts", ""),
    ],
)
def test_errors_name_the_key(tmp_path, body, key, fragment):
    with pytest.raises(ConfigError) as caught:
        server(tmp_path, body)
    message = str(caught.value)
    assert key in message, message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("text", "size"), [("512M", 512 << 20), ("1G", 1 << 30), ("1.5GiB", 3 << 29), ("64k", 64 << 10), (4096, 4096)]
)
def test_sizes(text, size):
    assert parse_size(text) == size
