"""Result checks end to end: a real gateway, a real stdio MCP server whose content an attacker
wrote (tests/e2e/servers/poisoned_server.py), a real agent client and the SQLite audit log.

- `log` (the default): the poisoned result reaches the agent, `result.flagged` is recorded and
  `result_flagged` raised; an ordinary email is not flagged;
- provenance: sending money to the IBAN the poisoned email asked for is held, naming the
  result it came from; the user's own IBAN is not held;
- `deny`, `sanitize`, `ask` (the upstream ran; the result is given once a person approves);
- record thresholds; resource contents and prompt messages are read too.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from bastion.alerts.model import AlertKind
from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.conftest import SERVERS_DIR, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.servers.poisoned_server import ATTACKER_IBAN, USER_IBAN

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SERVER = {"command": sys.executable, "args": [str(SERVERS_DIR / "poisoned_server.py")]}


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


ALLOW_PAYMENTS = {
    "rules": [{"name": "pay", "match": {"tool": "send_money"}, "action": "allow", "skip_catalogue": "comm.*"}]
}
"""The user's payments are allowed by policy (the catalogue takes `send_money` for mail); provenance runs
before policy, so it still holds."""


def gateway_for(tmp_path: Path, results: dict[str, Any] | None = None, **server: Any) -> Gateway:
    path = write_config(
        tmp_path,
        {"mail": {**SERVER, **server}},
        results=results or {},
        approvals={"wait": 0},
        policy=ALLOW_PAYMENTS,
    )
    return Gateway(load_config(path))


def flagged_events(gateway: Gateway) -> list[dict[str, Any]]:
    rows = gateway.audit.rows(EventQuery(types=("result.flagged",)), newest_first=False)
    return [event_record(decode_row(row)) for row in rows]


async def test_a_poisoned_result_is_flagged_and_the_call_it_asks_for_is_held(tmp_path: Path) -> None:
    gateway = gateway_for(tmp_path)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", token) as client:
                ordinary = await client.call_tool("read_inbox", {"folder": "friends"})
                own = await client.call_tool("send_money", {"recipient": USER_IBAN, "amount": 10})
                poisoned = await client.call_tool("read_inbox", {"folder": "inbox"})
                attack = await client.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 100})
                again = await client.call_tool("send_money", {"recipient": USER_IBAN, "amount": 20})
            await gateway.audit.flush()
    assert ordinary.is_error is False
    assert "lunch moved" in text_of(ordinary)
    assert poisoned.is_error is False
    assert ATTACKER_IBAN in text_of(poisoned), "log: the agent gets the result"
    assert own.is_error is False, "the user's own IBAN is not held"
    assert again.is_error is False, "the user's own IBAN is not held after the poisoned result either"
    assert attack.is_error is True
    message = text_of(attack)
    assert "queued for human review" in message
    assert f"{ATTACKER_IBAN!r} first appeared in a result of mail.read_inbox flagged as injection" in message
    [event] = flagged_events(gateway)
    assert (event["tool"], event["action"], event["agent"]) == ("read_inbox", "log", "assistant")
    assert "framing" in event["detectors"]
    assert any(re.match(r"framing in content\[0\]\.text\[\d+:\d+\]", f) for f in event["findings"])
    assert event["correlation_id"] in message, "the held call names the poisoned result's call"
    kinds = [alert.kind for alert in gateway.recent_alerts.latest(20)]
    assert AlertKind.RESULT_FLAGGED in kinds


@pytest.mark.parametrize(
    ("results", "expect"),
    [
        ({"on_injection": "deny"}, "withheld"),
        ({"servers": {"mail": {"on_injection": "deny"}}}, "withheld"),
        ({"tools": {"mail/read_*": {"on_injection": "deny"}}}, "withheld"),
        ({"on_injection": "sanitize"}, "sanitized"),
        ({"on_injection": "log"}, "passed"),
    ],
    ids=["deny", "deny-per-server", "deny-per-tool", "sanitize", "log"],
)
async def test_the_action_on_a_poisoned_result(tmp_path: Path, results: dict[str, Any], expect: str) -> None:
    gateway = gateway_for(tmp_path, results)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", token) as client:
                page = await client.call_tool("read_page", {"url": "https://recipes.example"})
                ordinary = await client.call_tool("read_inbox", {"folder": "friends"})
    assert ordinary.is_error is False
    assert "\u27e6" not in text_of(ordinary)
    text = text_of(page)
    if expect == "withheld":
        assert page.is_error is True
        assert "Bastion withheld this result of mail/read_page" in text
        assert "hidden.html_comment" in text
        assert "collector@evil.example" not in text
    elif expect == "sanitized":
        assert page.is_error is False
        assert text.startswith("[Bastion: this result from mail/read_page contains text that looks like instructions")
        assert "\u27e6untrusted content from mail/read_page" in text
        assert "\u27e6end of untrusted content\u27e7" in text
    else:
        assert page.is_error is False
        assert "\u27e6" not in text


async def test_ask_holds_the_result_until_a_person_approves(tmp_path: Path) -> None:
    gateway = gateway_for(tmp_path, {"on_injection": "ask"})
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            assert gateway.approvals is not None
            _, token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", token) as client:
                held = await client.call_tool("read_inbox", {"folder": "inbox"})
                match = re.search(r"queued for human review as approval ([0-9a-f]{8})", text_of(held))
                assert match is not None, text_of(held)
                gateway.approvals.decide(match[1], approve=True, decided_by="ops")
                released = await client.call_tool("read_inbox", {"folder": "inbox"})
    assert held.is_error is True
    assert "(the upstream ran)" in text_of(held)
    assert ATTACKER_IBAN not in text_of(held)
    assert released.is_error is False
    assert ATTACKER_IBAN in text_of(released)


@pytest.mark.parametrize(
    ("results", "rows", "flagged", "error"),
    [
        ({"max_records": 3}, 5, True, False),
        ({"max_records": 3}, 3, False, False),
        ({"max_records": 3, "on_oversize": "deny"}, 5, True, True),
        ({"max_bytes": 100, "on_oversize": "deny"}, 20, True, True),
    ],
    ids=["log-over", "at-threshold", "deny-records", "deny-bytes"],
)
async def test_record_and_byte_thresholds(
    tmp_path: Path, results: dict[str, Any], rows: int, flagged: bool, error: bool
) -> None:
    gateway = gateway_for(tmp_path, results)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", token) as client:
                listed = await client.call_tool("list_rows", {"count": rows})
            await gateway.audit.flush()
    assert listed.is_error is error
    events = flagged_events(gateway)
    assert bool(events) is flagged
    if flagged:
        assert events[0]["detectors"][0].startswith("volume.")


async def test_resources_and_prompts_are_read_too(tmp_path: Path) -> None:
    gateway = gateway_for(tmp_path, {"on_injection": "deny"})
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", token) as client:
                with pytest.raises(MCPError, match="Bastion withheld this result of mail \\(resources/read\\)"):
                    await client.read_resource("mail://inbox/latest")
                with pytest.raises(MCPError, match="Bastion withheld this result of mail \\(prompts/get\\)"):
                    await client.get_prompt("summarize_inbox")
            await gateway.audit.flush()
    methods = sorted(event["method"] for event in flagged_events(gateway))
    assert methods == ["prompts/get", "resources/read"]


async def test_an_untrusted_servers_values_are_remembered_without_a_finding(tmp_path: Path) -> None:
    gateway = gateway_for(tmp_path, untrusted=True)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", token) as client:
                await client.call_tool("read_inbox", {"folder": "friends"})
                sent = await client.call_tool("send_money", {"recipient": "carol@example.com", "amount": 1})
    assert sent.is_error is True
    assert "from untrusted server 'mail'" in text_of(sent)
