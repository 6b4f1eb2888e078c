from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.config import load_config
from bastion.proxy.aggregate_catalogue import Catalogue


def catalogue(tmp_path: Path, patterns: list[str] | None = None, **servers: Any) -> Catalogue:
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump({"servers": servers}), encoding="utf-8")
    return Catalogue(load_config(path), patterns)


def test_names_overrides_and_hidden_tools(tmp_path: Path) -> None:
    tools = {"git_log": {"expose_as": "history", "description": "Commits."}, "git_reset": {"hidden": True}}
    cat = catalogue(
        tmp_path, git={"command": "mcp-server-git", "tools": tools}, time={"command": "t", "expose_as": "clock"}
    )
    assert cat.tool_name("git", "git_status") == "git__git_status"
    assert cat.tool_name("git", "git_log") == "history"
    assert cat.tool_name("git", "git_reset") is None
    assert cat.tool_name("time", "get_current_time") == "clock__get_current_time"
    assert cat.expose_tool("git", {"name": "git_log", "description": "theirs"}) == {
        "name": "history",
        "description": "Commits.",
    }
    assert cat.tool_owners("history") == ["git"]
    assert cat.real_tool("git", "history", ["git_log"]) == "git_log"
    assert cat.real_tool("git", "git__git_log", ["git_log"]) is None  # renamed: not under its old name
    assert cat.real_tool("git", "git__git_reset", ["git_reset"]) is None
    assert cat.tool_owners("clock__get_current_time") == ["time"]
    assert cat.tool_owners("time__get_current_time") == []


@pytest.mark.parametrize(
    ("patterns", "visible"),
    [
        (["time__*"], {"time__now"}),
        (["git__git_status", "time__*"], {"time__now", "git__git_status"}),
        (["*"], {"time__now", "git__git_status", "git__git_log"}),
    ],
)
def test_a_virtual_server_keeps_the_tools_its_globs_match(
    tmp_path: Path, patterns: list[str], visible: set[str]
) -> None:
    cat = catalogue(tmp_path, patterns, time={"command": "t"}, git={"command": "g"})
    exposed = {cat.tool_name(s, t) for s, t in [("time", "now"), ("git", "git_status"), ("git", "git_log")]}
    assert exposed - {None} == visible


@pytest.mark.parametrize(
    ("server", "prefix"), [("time", "time"), ("a__b", "a_b"), ("tools_", "tools"), ("x" * 60, "x" * 48)]
)
def test_a_server_name_becomes_a_prefix_with_no_separator_in_it(tmp_path: Path, server: str, prefix: str) -> None:
    cat = catalogue(tmp_path, **{server: {"command": "x"}})
    assert cat.tool_name(server, "t") == f"{prefix}__t"
