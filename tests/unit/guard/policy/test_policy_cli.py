"""`bastion policy check` and `bastion policy explain`: dry runs that start no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bastion.cli.main import main

CONFIG = """\
servers:
  crm: {command: "does-not-exist-and-is-never-started"}
  files: {command: "does-not-exist-and-is-never-started"}
agents:
  support-bot: {roles: [support]}
policy:
  servers:
    files: {roots: [/srv/data]}
  rules:
    - name: crm-deletes
      match: {server: crm, tool: "delete_*"}
      action: ask
    - name: support-no-drops
      match: {role: support, tool: run_query}
      when: {arguments.sql: {sql: [drop, truncate]}}
      action: deny
    - name: files-outside
      match: {server: files}
      when: {arguments.**: {outside_roots: true}}
      action: deny
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def check(config: Path, tmp_path: Path, calls: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    calls_file = tmp_path / "calls.jsonl"
    calls_file.write_text("\n".join(c if isinstance(c, str) else json.dumps(c) for c in calls) + "\n", encoding="utf-8")
    done = CliRunner().invoke(main, ["policy", "check", "--config", str(config), "--calls", str(calls_file)])
    return done.exit_code, [json.loads(line) for line in done.stdout.splitlines()]


def test_check_prints_one_line_per_call_in_order(config: Path, tmp_path: Path) -> None:
    calls = [
        {"id": "a", "server": "crm", "tool": "delete_user", "arguments": {"id": 3}},
        {"id": "b", "server": "db", "tool": "run_query", "agent": "support-bot", "arguments": {"sql": "drop table t"}},
        {"id": "c", "server": "db", "tool": "run_query", "arguments": {"sql": "select 1"}},
        {"id": "d", "server": "files", "tool": "read_file", "arguments": {"path": "/srv/data/x.txt"}},
        {"id": "e", "server": "files", "tool": "read_file", "arguments": {"path": "/srv/data/../../var/x"}},
        # A server that is not configured: judged with an empty context, plus what the line gives.
        {"id": "f", "server": "other", "tool": "read_file", "arguments": {"path": "/srv/data/x.txt"}},
        {
            "id": "g",
            "server": "files",
            "tool": "read_file",
            "arguments": {"path": "/srv/data/x.txt"},
            "context": {"allowed_roots": ["/home/me"]},
        },
    ]
    code, results = check(config, tmp_path, calls)
    assert code == 0
    assert [(r["id"], r["decision"], r["rule"]) for r in results] == [
        ("a", "ask", "rule:crm-deletes"),
        ("b", "deny", "rule:support-no-drops"),
        ("c", "allow", "profile:recommended"),
        ("d", "allow", "profile:recommended"),
        ("e", "deny", "rule:files-outside"),
        ("f", "allow", "profile:recommended"),
        ("g", "deny", "rule:files-outside"),
    ]
    assert all(r["reason"] for r in results)
    assert results[0]["reason"].startswith("rule crm-deletes (bastion.yaml:10): holds delete_user on crm for approval")


def test_check_reports_bad_lines_and_carries_on(config: Path, tmp_path: Path) -> None:
    calls: list[Any] = [
        "{not json",
        {"id": 2, "server": "crm"},
        {"id": 3, "server": "crm", "tool": "t", "arguments": [1]},
        {"id": 4, "server": "crm", "tool": "t", "context": {"allowed_roots": "/srv"}},
        {"id": 5, "server": "crm", "tool": "get_user"},
    ]
    code, results = check(config, tmp_path, calls)
    assert code == 1
    assert [r.get("error", "")[:30] for r in results] == [
        "Expecting property name enclos",
        "`tool` must be a string",
        "`arguments` must be an object",
        "`context.allowed_roots` must b",
        "",
    ]
    assert [r["line"] for r in results[:4]] == [1, 2, 3, 4]
    assert results[4] | {"reason": ""} == {
        "id": 5,
        "decision": "allow",
        "rule": "profile:recommended",
        "reason": "",
        "log": False,
        "findings": [],
    }


def test_explain_shows_every_rule_considered(config: Path) -> None:
    args = ["policy", "explain", "--config", str(config), "--server", "db", "--tool", "run_query"]
    done = CliRunner().invoke(main, [*args, "--agent", "support-bot", "--args", '{"sql": "TRUNCATE t"}'])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "call: agent 'support-bot', server 'db', tool 'run_query'"
    assert lines[1] == "  · rule crm-deletes: server 'db' is not 'crm'"
    assert lines[2].startswith("  ✔ rule support-no-drops -> deny: matches (role 'support', tool 'run_query', when")
    assert lines[3] == "  · rule files-outside: not tried: an earlier rule matched"
    assert any(line.startswith("  ✔ catalogue sql.truncate -> deny") for line in lines)
    assert lines[-1].startswith("verdict: deny by rule:support-no-drops: rule support-no-drops (bastion.yaml:13)")
    done = CliRunner().invoke(main, [*args, "--args", '{"sql": "TRUNCATE t"}', "--json"])
    out = json.loads(done.output)
    assert (out["decision"], out["rule"]) == ("deny", "catalogue:sql.truncate")
    assert out["considered"][1] == {
        "kind": "rule",
        "id": "support-no-drops",
        "applies": False,
        "why": "agent 'policy-check' has none of the roles 'support'",
        "decision": None,
    }


def test_explain_rejects_bad_json(config: Path) -> None:
    args = ["policy", "explain", "--config", str(config), "--server", "db", "--tool", "t", "--args", "{"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 2
    assert "--args is not JSON" in done.output
