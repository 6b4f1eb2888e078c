"""The `limits:` section: plain-word rates, every level, and errors naming the file, key and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bastion.config import ConfigError, load_config
from bastion.guard.ratelimit.config import LimitsConfig, ToolLimitConfig
from bastion.guard.ratelimit.rules import describe, rate_rules

SERVERS = "servers: {time: {command: mcp-server-time}}\n"


def load_limits(tmp_path: Path, text: str) -> LimitsConfig:
    path = tmp_path / "bastion.yaml"
    path.write_text(SERVERS + textwrap.dedent(text), encoding="utf-8")
    return load_config(path, environ={}).limits


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_limits(tmp_path, text)
    return info.value


def test_no_limits_by_default(tmp_path: Path) -> None:
    limits = load_limits(tmp_path, "")
    assert not limits.any
    assert rate_rules(limits) == ()
    assert (limits.storage, limits.on_storage_failure, limits.strategy) == ("memory://", "deny", "moving-window")


def test_per_agent_as_written_in_the_issue(tmp_path: Path) -> None:
    limits = load_limits(tmp_path, 'limits: {per_agent: "60/minute"}\n')
    [rule] = rate_rules(limits)
    assert (rule.name, rule.rate, rule.scope) == ("per_agent", "60/minute", "agent")
    assert [describe(item) for item in rule.items] == ["60/minute"]
    assert limits.any
    assert limits.rate_limited
    assert not limits.shared


def test_every_level(tmp_path: Path) -> None:
    limits = load_limits(
        tmp_path,
        """
        limits:
          per_agent: 60/minute
          per_agent_server: 10 per second; 1000/day
          per_tool:
            "git/*": 10/minute
            "delete_*": {rate: 5/hour, per: all}
          global: 1000/minute
          agents: {batch-bot: 600/minute}
          concurrent_per_agent: 8
          concurrent_per_server: 32
          max_request_bytes: 64K
          max_response_bytes: 1M
          storage: redis://127.0.0.1:6379/0
          on_storage_failure: local
          strategy: sliding-window
        """,
    )
    assert limits.per_tool == {
        "git/*": ToolLimitConfig(rate="10/minute", per="agent"),
        "delete_*": ToolLimitConfig(rate="5/hour", per="all"),
    }
    assert (limits.max_request_bytes, limits.max_response_bytes) == (64 << 10, 1 << 20)
    assert limits.shared
    rules = rate_rules(limits)
    # Narrowest first: the order a call is counted in.
    assert [r.name for r in rules] == [
        "per_tool git/*",
        "per_tool delete_*",
        "per_agent_server",
        "agents.batch-bot",
        "per_agent",
        "global",
    ]
    assert [describe(i) for i in rules[2].items] == ["10/second", "1000/day"]
    assert rules[4].excluded_agents == {"batch-bot"}


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("limits: {per_agent: sixty a minute}", "limits.per_agent", "`sixty a minute` is not a rate"),
        ("limits: {per_agent: 60}", "limits.per_agent", "`60` is not a rate"),
        ("limits: {global: 0/minute}", "limits.global", "`0/minute` is not a rate"),
        ("limits: {per_tool: {git/*: 10/fortnight}}", "limits.per_tool.git/*.rate", "`10/fortnight` is not a rate"),
        ("limits: {per_tool: {a/b/c: 10/minute}}", "limits.per_tool.a/b/c", "is not a tool glob"),
        ("limits: {per_tool: {x: {rate: 1/second, per: team}}}", "limits.per_tool.x.per", "must be one of"),
        ("limits: {agents: {bot: lots}}", "limits.agents.bot", "`lots` is not a rate"),
        ("limits: {concurrent_per_agent: 0}", "limits.concurrent_per_agent", "must be greater than 0"),
        ("limits: {concurrent_per_agent: true}", "limits.concurrent_per_agent", "not true/false"),
        ("limits: {max_response_bytes: huge}", "limits.max_response_bytes", "`huge` is not a size"),
        ("limits: {storage: mysql://db}", "limits.storage", "not a storage"),
        ("limits: {on_storage_failure: allow}", "limits.on_storage_failure", "must be one of"),
        ("limits: {per_agnet: 60/minute}", "limits.per_agnet", "unknown key"),
    ],
)
def test_bad_limits_name_the_file_key_and_fix(tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = error_of(tmp_path, text + "\n")
    assert error.key == key
    assert problem in error.problem
    assert error.file == tmp_path / "bastion.yaml"
    assert error.line == 2
    assert error.fix
    if "rate" in problem:
        assert "60/minute" in error.fix


def test_a_typo_gets_a_suggestion(tmp_path: Path) -> None:
    assert "did you mean `per_agent`?" in error_of(tmp_path, "limits: {per_agnet: 60/minute}\n").fix


def test_storage_shorthand_and_the_password_stays_out_of_repr(tmp_path: Path) -> None:
    assert load_limits(tmp_path, "limits: {storage: memory}\n").storage == "memory://"
    limits = load_limits(tmp_path, "limits: {storage: 'redis://:hunter2@127.0.0.1:6379/0'}\n")
    assert "hunter2" not in repr(limits)
