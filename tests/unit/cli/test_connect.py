"""`bastion connect CLIENT`: each client's entry in its documented shape, merged safely and idempotently.

The fixtures under `fixtures/clients/` are configuration files written as each client's own
documentation shows them (with entries of their own that must survive).
"""

from __future__ import annotations

import json
import shlex
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bastion.cli.main import main
from bastion.config import load_config
from bastion.stores import open_token_store

FIXTURES = Path(__file__).parent / "fixtures" / "clients"
CLIENTS = ["openclaw", "claude-desktop", "claude-code", "cursor", "vscode"]
SERVERS_KEY = {
    "openclaw": ("mcp", "servers"),
    "claude-desktop": ("mcpServers",),
    "claude-code": ("mcpServers",),
    "cursor": ("mcpServers",),
    "vscode": ("servers",),
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bastion.yaml"
    servers = {"time": {"command": "true"}, "git": {"command": "true"}}
    path.write_text(
        yaml.safe_dump({"listen": "127.0.0.1:8750", "data_dir": str(tmp_path / "data"), "servers": servers})
    )
    return path


def run(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    return result


def servers_of(document: dict[str, Any], client: str) -> dict[str, Any]:
    node: Any = document
    for key in SERVERS_KEY[client]:
        node = node[key]
    assert isinstance(node, dict)
    return node


def check_shape(client: str, entry: dict[str, Any], url: str) -> None:
    """The entry as the client's documentation describes a remote (or, for Claude Desktop, a launched) server."""
    if client == "claude-desktop":
        assert set(entry) == {"command", "args"}
        assert Path(entry["command"]).name == "bastion"
        assert entry["args"][:3] == ["wrap", "--server", "time"]
        return
    headers = entry["headers"]
    assert entry["url"] == url
    assert headers["Authorization"].startswith("Bearer bst_")
    if client == "openclaw":
        assert entry["transport"] == "streamable-http"  # without it OpenClaw tries legacy SSE first
        assert set(entry) == {"url", "transport", "headers"}
    elif client in ("claude-code", "vscode"):
        assert entry["type"] == "http"
        assert set(entry) == {"type", "url", "headers"}
    else:
        assert set(entry) == {"url", "headers"}


@pytest.mark.parametrize("client", CLIENTS)
def test_write_merges_into_the_documented_file_and_keeps_its_entries(client: str, config: Path, tmp_path: Path) -> None:
    target = tmp_path / "client" / "config.json"
    target.parent.mkdir()
    original = (FIXTURES / f"{client}.json").read_text()
    target.write_text(original)
    result = run("connect", client, "--server", "time", "--write", "--file", str(target), "--config", str(config))
    assert result.exit_code == 0, result.output
    written = json.loads(target.read_text())
    before = json.loads(original)
    servers = servers_of(written, client)
    for name, entry in servers_of(before, client).items():
        assert servers[name] == entry  # unrelated entries kept as they were
    check_shape(client, servers["time"], "http://127.0.0.1:8750/servers/time/mcp")
    assert "git" not in servers  # only what was asked for
    for key, value in before.items():  # other top-level settings kept
        if key != SERVERS_KEY[client][0]:
            assert written[key] == value
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    backup = target.with_name("config.json.bastion-backup")
    assert backup.read_text() == original
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


@pytest.mark.parametrize("client", ["openclaw", "claude-code", "cursor", "vscode"])
def test_write_twice_changes_nothing_and_mints_no_second_token(client: str, config: Path, tmp_path: Path) -> None:
    target = tmp_path / "fresh" / "config.json"  # no file yet: created, folder 0700
    first = run("connect", client, "--all", "--write", "--file", str(target), "--config", str(config))
    assert first.exit_code == 0, first.output
    content = target.read_bytes()
    second = run("connect", client, "--all", "--write", "--file", str(target), "--config", str(config))
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output
    assert target.read_bytes() == content
    assert not target.with_name("config.json.bastion-backup").exists()
    store = open_token_store(load_config(config))
    try:
        assert len(store.list()) == 1
    finally:
        store.close()
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert set(servers_of(json.loads(content), client)) == {"bastion"}  # one entry: /mcp, every server


def test_a_revoked_token_in_the_file_is_replaced(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "mcp.json"
    assert run("connect", "cursor", "--write", "--file", str(target), "--config", str(config)).exit_code == 0
    token = json.loads(target.read_text())["mcpServers"]["bastion"]["headers"]["Authorization"].split()[-1]
    store = open_token_store(load_config(config))
    try:
        (info,) = store.list()
        store.revoke(info.id)
    finally:
        store.close()
    again = run("connect", "cursor", "--write", "--file", str(target), "--config", str(config))
    assert again.exit_code == 0, again.output
    assert token not in target.read_text()


def test_a_file_that_is_not_plain_json_is_never_rewritten(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "openclaw.json"
    json5 = "{\n  // my settings\n  mcp: {servers: {}},\n}\n"
    target.write_text(json5)
    result = run("connect", "openclaw", "--write", "--file", str(target), "--config", str(config))
    assert result.exit_code != 0
    assert "not plain JSON" in result.output
    assert target.read_text() == json5


def test_claude_code_prints_its_own_add_command(config: Path) -> None:
    result = run("connect", "claude-code", "--server", "git", "--config", str(config))
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("claude mcp add")]
    words = shlex.split(line)
    assert words[:6] == ["claude", "mcp", "add", "--transport", "http", "git"]
    assert words[6] == "http://127.0.0.1:8750/servers/git/mcp"
    assert words[7] == "--header"
    assert words[8].startswith("Authorization: Bearer bst_")


def test_tokens_are_scoped_as_asked(config: Path) -> None:
    result = run(
        "connect", "cursor", "--server", "git", "--agent", "ide-bot", "--expires", "30d", "--config", str(config)
    )
    assert result.exit_code == 0, result.output
    store = open_token_store(load_config(config))
    try:
        (info,) = store.list()
    finally:
        store.close()
    assert info.agent == "ide-bot"
    assert info.servers == frozenset({"git"})
    assert info.expires_at is not None


def test_unknown_servers_are_named_and_server_with_all_is_refused(config: Path) -> None:
    unknown = run("connect", "cursor", "--server", "crm", "--config", str(config))
    assert unknown.exit_code != 0
    assert "no server named 'crm'" in unknown.output
    both = run("connect", "cursor", "--server", "time", "--all", "--config", str(config))
    assert both.exit_code != 0


@pytest.mark.parametrize("args", [(), ("--all",)])
def test_every_server_is_one_entry_for_the_aggregate_endpoint(config: Path, args: tuple[str, ...]) -> None:
    result = run("connect", "openclaw", *args, "--config", str(config))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output[result.output.index("\n{") + 1 :])
    (name, entry), *others = printed["mcp"]["servers"].items()
    assert others == []
    assert (name, entry["url"], entry["transport"]) == ("bastion", "http://127.0.0.1:8750/mcp", "streamable-http")


def test_over_stdio_every_server_is_one_wrap_all_entry(config: Path) -> None:
    result = run("connect", "claude-desktop", "--all", "--config", str(config))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output[result.output.index("\n{") + 1 :])
    assert list(printed["mcpServers"]) == ["bastion"]
    assert printed["mcpServers"]["bastion"]["args"][:2] == ["wrap", "--all"]
