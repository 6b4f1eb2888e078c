"""`sink:` on policy rules: which tools provenance treats as side-effecting.

A rule may only mark (`sink` without `action`: it decides nothing), or decide and mark; the first
matching rule that sets `sink` wins over the older `results.tools.<glob>.sink` alias, which wins
over the tool's name.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from bastion.config import load_config
from bastion.guard.policy.engine import PolicyEngine
from bastion.guard.policy.lint import policy_of
from bastion.guard.policy.rules import Subject
from bastion.guard.policy.sinks import SinkRules
from bastion.guard.results.config import ResultsConfig
from bastion.guard.results.provenance import ProvenanceCheck
from bastion.guard.results.taint import MemoryTaintStore, TaintSource, Whose
from bastion.model import Decision, Principal, ToolCall

HEAD = "servers:\n  crm: {command: echo}\n  bank: {command: echo}\n"
ATTACKER = "US133000000121212121212"
SOURCE = TaintSource("c0ffee", "mail", "read_inbox", "flagged as injection (framing)", 0.0)


def sink_rules(tmp_path: Path, text: str) -> SinkRules:
    path = tmp_path / "bastion.yaml"
    path.write_text(HEAD + textwrap.dedent(text), encoding="utf-8")
    return SinkRules(policy_of(load_config(path)))


def call(server: str, tool: str, arguments: dict[str, Any] | None = None, agent: str = "bot") -> ToolCall:
    return ToolCall("c1", Principal(agent), server, tool, arguments or {}, None)


POLICY = """
policy:
  rules:
    - {name: mark-links, match: {server: crm, tool: [get_link, lookup_*]}, sink: true}
    - {name: pay, match: {server: bank, tool: send_money}, action: allow, sink: true}
    - {name: drafts, match: {tool: create_draft}, sink: false}
    - {name: later, match: {tool: get_link}, sink: false}
    - {name: only-decides, match: {tool: fetch}, action: deny}
"""


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("crm", "get_link", True),  # the first matching rule wins over `later`
        ("crm", "lookup_user", True),
        ("bank", "get_link", False),  # `mark-links` is for crm only: `later` decides
        ("bank", "send_money", True),
        ("crm", "create_draft", False),
        ("crm", "fetch", None),  # a rule without `sink` says nothing
        ("crm", "read_file", None),
    ],
)
def test_the_first_matching_rule_that_sets_sink_decides(
    tmp_path: Path, server: str, tool: str, expected: bool | None
) -> None:
    assert sink_rules(tmp_path, POLICY)(call(server, tool)) is expected


def test_a_rule_that_only_marks_sinks_decides_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(HEAD + textwrap.dedent(POLICY), encoding="utf-8")
    policy = policy_of(load_config(path))
    assert [rule.id for rule in policy.rules] == ["pay", "only-decides"]
    assert [rule.id for rule in policy.sinks] == ["mark-links", "pay", "drafts", "later"]
    engine = PolicyEngine(policy.rules)
    decided = engine.decide(Subject("bot", frozenset(), "crm", "get_link"), {}, policy.context_for("crm"))
    assert decided.verdict.decision is Decision.ALLOW
    assert "no rule" in decided.verdict.reason


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "results", "held"),
    [
        ("get_link", {}, True),  # named like a read; a policy rule marks it
        ("lookup_user", {"tools": {"crm/lookup_*": {"sink": False}}}, True),  # the policy rule wins over the alias
        ("fetch_page", {"tools": {"crm/fetch_*": {"sink": True}}}, True),  # the alias still works
        ("create_draft", {}, False),  # named like a sink; a policy rule exempts it
        ("read_file", {}, False),
    ],
)
async def test_provenance_holds_the_sinks_policy_rules_mark(
    tmp_path: Path, tool: str, results: dict[str, Any], held: bool
) -> None:
    store = MemoryTaintStore(window=60, max_values=10)
    await store.taint(Whose("bot"), [ATTACKER], SOURCE)
    check = ProvenanceCheck(ResultsConfig.model_validate(results), store, sink_rules(tmp_path, POLICY))
    verdict = await check.check_tool_call(call("crm", tool, {"note": f"account {ATTACKER}"}))
    assert (verdict is not None) is held
    if verdict is not None:
        assert verdict.decision is Decision.ASK
        assert verdict.source_call == "c0ffee"
        assert "first appeared in a result of mail.read_inbox" in verdict.reason
