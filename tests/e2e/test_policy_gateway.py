"""The policy through the HTTP front door, in a real `bastion up`, in front of the real mcp-server-time.

A rule denies a call and the agent's message names it; a tool denied outright is hidden from
tools/list and denied when called anyway; a catalogue entry denies a secret; an annotation rule
reads the annotations the server declared; the audit record names the rule that decided.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.e2e.clients import connect
from tests.e2e.conftest import VENV_BIN, RunningGateway, start_gateway, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

POLICY = {
    "profile": "recommended",
    "rules": [
        {"name": "no-conversions", "match": {"server": "time", "tool": "convert_time"}, "action": "deny"},
        {
            "name": "no-mars",
            "match": {"server": "time", "tool": "get_current_time"},
            "when": {"arguments.timezone": {"glob": "Mars/*"}},
            "action": "deny",
            "reason": "there is no time zone on Mars",
        },
        {
            "name": "auditors-read-only",
            "match": {"role": "auditor", "annotations": {"readOnlyHint": True}},
            "action": "allow",
            "log": True,
        },
    ],
}
GITHUB_TOKEN = "ghp_R4nd0mT0k3nV4lu3Xy9Qw2Er5Ty8Ui1Op3As6D"  # the right format; random, inactive


@pytest.fixture(scope="module")
def policy_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("policy")
    config = write_config(
        folder,
        {"time": {"command": str(VENV_BIN / "mcp-server-time")}},
        agents={"ops": {}, "zed-auditor": {"roles": ["auditor"]}},
        policy=POLICY,
    )
    running = start_gateway(config)
    try:
        yield running
    finally:
        running.stop()


async def test_policy_decides_hides_and_is_audited(policy_gateway: RunningGateway) -> None:
    gateway = policy_gateway
    with anyio.fail_after(60):
        async with connect(gateway, "time") as client:
            listed = [tool.name for tool in (await client.list_tools()).tools]
            allowed = await client.call_tool("get_current_time", {"timezone": "UTC"})
            mars = await client.call_tool("get_current_time", {"timezone": "Mars/Olympus_Mons"})
            hidden = await client.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
            secret = await client.call_tool("get_current_time", {"timezone": GITHUB_TOKEN})

    assert listed == ["get_current_time"]  # convert_time is denied outright, so it is not listed
    assert allowed.is_error is False
    assert "UTC" in allowed.content[0].text

    assert mars.is_error is True
    text = mars.content[0].text
    assert text.startswith("Bastion denied this tool call: rule no-mars (bastion.yaml:")
    assert "there is no time zone on Mars" in text
    assert text.endswith("[check: policy/rule:no-mars]")

    assert hidden.is_error is True
    assert "rule no-conversions" in hidden.content[0].text
    assert hidden.content[0].text.endswith("[check: policy/rule:no-conversions]")

    assert secret.is_error is True
    assert "[check: policy/catalogue:secrets.github_token]" in secret.content[0].text
    assert GITHUB_TOKEN not in secret.content[0].text  # the reason names the kind, not the value

    records = [r for r in gateway.audit_records() if r["method"] == "tools/call"]
    by_outcome = [(r["tool"], r["outcome"], r["check"]) for r in records]
    assert by_outcome == [
        ("get_current_time", "allowed", "policy/profile:recommended"),
        ("get_current_time", "denied", "policy/rule:no-mars"),
        ("convert_time", "denied", "policy/rule:no-conversions"),
        ("get_current_time", "denied", "policy/catalogue:secrets.github_token"),
    ]
    assert records[1]["error"].startswith("rule no-mars (bastion.yaml:")


async def test_rules_match_the_annotations_the_server_declared(policy_gateway: RunningGateway) -> None:
    gateway = policy_gateway
    token = gateway.create_token("zed-auditor")
    with anyio.fail_after(60):
        async with connect(gateway, "time", token=token) as client:
            listed = sorted(tool.name for tool in (await client.list_tools()).tools)
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert listed == ["get_current_time"]
    assert result.is_error is False
    record = [r for r in gateway.audit_records() if r["agent"] == "zed-auditor" and r["method"] == "tools/call"][-1]
    # mcp-server-time declares readOnlyHint: true; the request said nothing about it.
    assert (record["outcome"], record["check"]) == ("allowed", "policy/rule:auditors-read-only")


def test_bad_policy_stops_bastion_up(tmp_path: Path) -> None:
    from tests.e2e.conftest import run_cli

    config = write_config(
        tmp_path,
        {"time": {"command": str(VENV_BIN / "mcp-server-time")}},
        policy={"rules": [{"match": {"tool": "*"}, "action": "ask"}, {"match": {"tool": "x"}, "action": "deny"}]},
    )
    done = run_cli("up", "--config", str(config), timeout=60)
    assert done.returncode == 2
    assert "rule rules[1] can never apply: rule rules[0]" in done.stderr
    assert f"{config}:" in done.stderr


async def test_the_policy_holds_through_bastion_wrap(policy_gateway: RunningGateway) -> None:
    with anyio.fail_after(60):
        async with connect(policy_gateway, "time", front="wrap") as client:
            listed = [tool.name for tool in (await client.list_tools()).tools]
            mars = await client.call_tool("get_current_time", {"timezone": "Mars/Olympus_Mons"})
            utc = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert listed == ["get_current_time"]
    assert mars.is_error is True
    assert mars.content[0].text.endswith("[check: policy/rule:no-mars]")
    assert utc.is_error is False
