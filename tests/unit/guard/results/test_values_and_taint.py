"""Values remembered from untrusted results, the per-agent taint memory, and which calls are sinks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bastion.guard.off_loop import OFF_LOOP_BYTES
from bastion.guard.results import provenance as provenance_module
from bastion.guard.results.config import ResultsConfig
from bastion.guard.results.provenance import ProvenanceCheck, is_sink
from bastion.guard.results.taint import MemoryTaintStore, TaintSource, Whose
from bastion.guard.results.values import argument_values, trusted, values_in
from bastion.model import Decision, Principal, ToolCall

SOURCE = TaintSource("c0ffee", "banking", "read_file", "flagged as injection (framing)", 0.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pay US133000000121212121212 now", {("account", "US133000000121212121212")}),
        ("IBAN GB29 NWBK 6016 1331 9268 19.", {("account", "GB29NWBK60161331926819")}),
        ("mail Evil@Attacker.COM", {("email", "evil@attacker.com")}),
        ("see https://www.Evil.example/x?y=1.", {("url", "https://www.evil.example/x?y=1"),
                                                ("domain", "evil.example")}),
        ("call +1 415 555 0100", {("phone", "+14155550100"), ("account", "14155550100")}),
        ("open /home/u/.ssh/id_rsa", {("path", "/home/u/.ssh/id_rsa")}),
        ("read landlord-notices.txt", {("path", "landlord-notices.txt")}),
        ("key sk_live_abcdefghijklmnop123456", {("token", "sk_live_abcdefghijklmnop123456")}),
    ],
    ids=["iban", "iban-spaced", "email", "url", "phone", "path", "file-name", "token"],
)  # fmt: skip
def test_values_in_text(text: str, expected: set[tuple[str, str]]) -> None:
    assert expected <= set(values_in(text))


@pytest.mark.parametrize(
    "text",
    ["Meeting on 2024-05-01 at 10:30", "Total 1,250.00 EUR", "Version 3.11.2 released", "Read the notes."],
)
def test_ordinary_text_has_few_values(text: str) -> None:
    assert list(values_in(text)) == []


def test_an_email_address_does_not_remember_its_providers_domain() -> None:
    assert list(values_in("write to mark.black-2134@gmail.com")) == [("email", "mark.black-2134@gmail.com")]


def test_argument_values_match_the_same_value_written_another_way() -> None:
    found = argument_values({"recipient": "GB29 NWBK 6016 1331 9268 19", "to": ["Evil@Attacker.com"], "n": 12345678})
    assert {"GB29NWBK60161331926819", "evil@attacker.com", "12345678"} <= found


@pytest.mark.parametrize(
    ("value", "allowlist", "expected"),
    [
        ("bank.example", ("bank.example",), True),
        ("api.bank.example", ("bank.example",), True),
        ("alice@bank.example", ("bank.example",), True),
        ("https://bank.example/pay", ("bank.example",), True),
        ("evilbank.example", ("bank.example",), False),
        ("GB29NWBK60161331926819", ("GB29 NWBK 6016 1331 9268 19",), True),
        ("US133000000121212121212", ("GB29NWBK60161331926819",), False),
    ],
)
def test_trusted_values(value: str, allowlist: tuple[str, ...], expected: bool) -> None:
    assert trusted(value, allowlist) is expected


@pytest.mark.anyio
async def test_values_the_agent_wrote_before_are_not_tainted() -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    await store.note_arguments(Whose("a"), ["GB29NWBK60161331926819"])
    kept = await store.taint(Whose("a"), ["GB29NWBK60161331926819", "US133000000121212121212"], SOURCE)
    assert kept == ["US133000000121212121212"]
    assert await store.find(Whose("a"), ["GB29NWBK60161331926819"]) is None
    assert await store.find(Whose("a"), ["US133000000121212121212"]) == ("US133000000121212121212", SOURCE)
    assert await store.find(Whose("other-agent"), ["US133000000121212121212"]) is None


@pytest.mark.anyio
async def test_taints_expire_and_are_bounded() -> None:
    now = [0.0]
    store = MemoryTaintStore(window=60, max_values=2, clock=lambda: now[0])
    await store.taint(Whose("a"), ["v1", "v2", "v3"], SOURCE)
    assert await store.find(Whose("a"), ["v1"]) is None, "the oldest value is forgotten first"
    assert await store.find(Whose("a"), ["v3"]) is not None
    now[0] = 61.0
    assert await store.find(Whose("a"), ["v3"]) is None, "expired after the window"


@pytest.mark.anyio
async def test_the_number_of_agents_is_bounded() -> None:
    store = MemoryTaintStore(window=60, max_values=10, max_agents=2)
    for agent in ("a", "b", "c"):
        await store.taint(Whose(agent), ["v"], SOURCE)
    assert await store.find(Whose("a"), ["v"]) is None
    assert await store.find(Whose("c"), ["v"]) is not None


def call(tool: str, arguments: dict[str, Any], annotations: dict[str, Any] | None = None) -> ToolCall:
    definition = {"name": tool, "annotations": annotations} if annotations is not None else None
    return ToolCall("id1", Principal("a"), "banking", tool, arguments, definition)


@pytest.mark.parametrize(
    ("tool", "annotations", "override", "expected"),
    [
        ("send_money", None, None, True),
        ("sendEmail", None, None, True),
        ("update_password", None, None, True),
        ("post_webpage", None, None, True),
        ("read_file", None, None, False),
        ("get_most_recent_transactions", None, None, False),
        ("send_money", {"readOnlyHint": True}, None, False),
        ("read_file", None, True, True),
        ("send_money", None, False, False),
    ],
)
def test_sinks(tool: str, annotations: dict[str, Any] | None, override: bool | None, expected: bool) -> None:
    assert is_sink(call(tool, {}, annotations), override) is expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("config", "decision"),
    [({}, Decision.ASK), ({"provenance": {"on_match": "deny"}}, Decision.DENY)],
    ids=["ask", "deny"],
)
async def test_a_sink_carrying_a_tainted_value_is_held_naming_its_source(
    config: dict[str, Any], decision: Decision
) -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    check = ProvenanceCheck(ResultsConfig.model_validate(config), store)
    await store.taint(Whose("a"), ["US133000000121212121212"], SOURCE)
    assert await check.check_tool_call(call("read_file", {"path": "US133000000121212121212"})) is None
    assert await check.check_tool_call(call("send_money", {"recipient": "GB29NWBK60161331926819"})) is None
    verdict = await check.check_tool_call(call("send_money", {"recipient": "US133000000121212121212", "amount": 1}))
    assert verdict is not None
    assert verdict.decision is decision
    assert verdict.check == "provenance"
    assert verdict.reason == (
        "argument value 'US133000000121212121212' first appeared in a result of banking.read_file "
        "flagged as injection (framing) (call c0ffee)"
    )


@pytest.mark.anyio
async def test_a_tool_marked_not_a_sink_is_not_held() -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    config = ResultsConfig.model_validate({"tools": {"banking/send_money": {"sink": False}}})
    await store.taint(Whose("a"), ["US133000000121212121212"], SOURCE)
    check = ProvenanceCheck(config, store)
    assert await check.check_tool_call(call("send_money", {"recipient": "US133000000121212121212"})) is None


@pytest.mark.anyio
async def test_a_large_argument_is_read_off_the_event_loop_and_its_planted_value_still_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real = provenance_module.call_argument_values

    def watched(call_id: str, arguments: Any) -> set[str]:
        threads.append(threading.get_ident())
        return real(call_id, arguments)

    monkeypatch.setattr(provenance_module, "call_argument_values", watched)
    store = MemoryTaintStore(window=60, max_values=10)
    check = ProvenanceCheck(ResultsConfig.model_validate({"provenance": {"on_match": "deny"}}), store)
    await store.taint(Whose("a"), ["US133000000121212121212"], SOURCE)
    memo = "Quarterly figures. " * (OFF_LOOP_BYTES // 19) + "Pay US133000000121212121212."
    verdict = await check.check_tool_call(call("send_money", {"recipient": "ops", "memo": memo}))
    assert verdict is not None
    assert verdict.decision is Decision.DENY
    assert threads == [threads[0]]
    assert threads[0] != threading.get_ident()
    assert await check.check_tool_call(call("send_money", {"recipient": "GB29NWBK60161331926819"})) is None
    assert threads[1] == threading.get_ident()  # a small argument is read here, at once
