"""PolicyCheck in the guard pipeline: verdicts, declared annotations only, tool-list filtering, fail closed."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.config import load_config
from bastion.guard.off_loop import OFF_LOOP_BYTES, text_size
from bastion.guard.pipeline import GuardPipeline, denial_message
from bastion.guard.policy.check import PolicyCheck
from bastion.guard.policy.lint import policy_of
from bastion.model import Decision, Principal, ToolCall

CONFIG = """\
servers:
  crm: {command: "true"}
agents:
  support-bot: {roles: [support]}
policy:
  rules:
    - name: no-deletes
      match: {server: crm, tool: "delete_*"}
      action: deny
    - name: support-reads-only
      match: {role: support, annotations: {readOnlyHint: false}}
      action: deny
      reason: support agents may only use read-only tools
    - name: watch-exports
      match: {tool: export_*}
      action: allow
      log: true
    - name: big-credits
      match: {tool: apply_credit}
      when: {arguments.amount: {gt: 100}}
      action: ask
"""

TOOLS: list[dict[str, Any]] = [
    {"name": "get_customer", "annotations": {"readOnlyHint": True}},
    {"name": "update_customer", "annotations": {"readOnlyHint": False}},
    {"name": "delete_customer", "annotations": {"destructiveHint": True}},
    {"name": "export_all"},
    {"name": "apply_credit"},
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def check(tmp_path: Path) -> PolicyCheck:
    path = tmp_path / "bastion.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return PolicyCheck(policy_of(load_config(path)))


def call(tool: str, agent: str = "ops", definition: dict[str, Any] | None = None, **arguments: Any) -> ToolCall:
    if definition is None:
        definition = next((t for t in TOOLS if t["name"] == tool), None)
    return ToolCall("c1", Principal(agent), "crm", tool, arguments, definition)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool_call", "decision", "check_name", "log"),
    [
        (call("get_customer"), Decision.ALLOW, "policy/profile:recommended", False),
        (call("delete_customer"), Decision.DENY, "policy/rule:no-deletes", False),
        (call("update_customer", "support-bot"), Decision.DENY, "policy/rule:support-reads-only", False),
        (call("update_customer"), Decision.ALLOW, "policy/profile:recommended", False),
        (call("get_customer", "support-bot"), Decision.ALLOW, "policy/profile:recommended", False),
        (call("export_all"), Decision.ALLOW, "policy/rule:watch-exports", True),
        (call("apply_credit", amount=500), Decision.ASK, "policy/rule:big-credits", False),
        (call("apply_credit", amount=5), Decision.ALLOW, "policy/profile:recommended", False),
    ],
)
async def test_verdicts(
    check: PolicyCheck, tool_call: ToolCall, decision: Decision, check_name: str, log: bool
) -> None:
    verdict = await check.check_tool_call(tool_call)
    assert verdict is not None
    assert (verdict.decision, verdict.check, verdict.log) == (decision, check_name, log)


@pytest.mark.anyio
async def test_annotations_come_from_the_declaration_never_from_the_request(check: PolicyCheck) -> None:
    # The request claims read-only in its arguments and _meta-like keys: ignored.
    claimed = call("update_customer", "support-bot", annotations={"readOnlyHint": True}, readOnlyHint=True)
    verdict = await check.check_tool_call(claimed)
    assert verdict is not None
    assert verdict.decision is Decision.DENY
    # A tool the server does not list has no declared annotations: annotation rules do not match it.
    undeclared = ToolCall("c2", Principal("support-bot"), "crm", "mystery", {}, None)
    verdict = await check.check_tool_call(undeclared)
    assert verdict is not None
    assert verdict.decision is Decision.ALLOW


@pytest.mark.anyio
async def test_tool_list_shows_only_callable_tools(check: PolicyCheck) -> None:
    pipeline = GuardPipeline([check])
    names = [t["name"] for t in await pipeline.filter_tools(Principal("ops"), "crm", [dict(t) for t in TOOLS])]
    assert names == ["get_customer", "update_customer", "export_all", "apply_credit"]
    names = [t["name"] for t in await pipeline.filter_tools(Principal("support-bot"), "crm", [dict(t) for t in TOOLS])]
    # apply_credit and export_all declare no annotations: readOnlyHint defaults to false, so they are hidden too.
    assert names == ["get_customer"]


@pytest.mark.anyio
async def test_hidden_tool_called_anyway_is_denied_naming_the_rule(check: PolicyCheck) -> None:
    verdict = await GuardPipeline([check]).evaluate(call("delete_customer"))
    assert verdict.decision is Decision.DENY
    message = denial_message(verdict)
    assert "rule no-deletes (bastion.yaml:7)" in message
    assert message.endswith("[check: policy/rule:no-deletes]")


@pytest.mark.anyio
async def test_ask_is_refused_until_approvals_exist(check: PolicyCheck) -> None:
    verdict = await GuardPipeline([check]).evaluate(call("apply_credit", amount=500))
    assert verdict.decision is Decision.DENY
    assert verdict.reason.startswith("human approval is required: rule big-credits")
    assert verdict.check == "policy/rule:big-credits"


@pytest.mark.anyio
async def test_an_engine_failure_denies(check: PolicyCheck, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(check.engine, "_scan", broken)
    verdict = await GuardPipeline([check]).evaluate(call("get_customer"))
    assert (verdict.decision, verdict.check) == (Decision.DENY, "policy")
    assert "the policy check failed (RuntimeError)" in verdict.reason


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({}, 0),
        ({"a": "xyz"}, 4),
        ({"a": ["xy", {"b": "z" * 10}], "n": 5}, 2 + 2 + 1 + 10),
    ],
)
def test_text_size(value: Any, size: int) -> None:
    assert text_size(value) == size


def _text_size_by_abc(value: Any, limit: int = OFF_LOOP_BYTES + 1) -> int:
    """`text_size` as it was written before its exact-type fast path: `isinstance` against the ABCs."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
            total += len(item)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


class _Text(str):
    pass


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.text(max_size=10).map(_Text) | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3).map(MappingProxyType),
    max_leaves=30,
)  # fmt: skip


@given(value=_JSONISH, limit=st.integers(min_value=0, max_value=200))
def test_text_size_is_the_abc_walks(value: Any, limit: int) -> None:
    """The fast path by exact type counts what the walk by `isinstance` counted, for JSON values and others
    (str subclasses, tuples, read-only mappings, bytes): the same count up to the limit, above it both
    times when the text is larger (where each walk stops past the limit may differ)."""
    full, counted = _text_size_by_abc(value, 10**9), text_size(value, limit)
    assert counted == full if full <= limit else counted > limit
    assert text_size(value) == full


@pytest.mark.anyio
async def test_large_arguments_are_judged_off_the_event_loop(check: PolicyCheck) -> None:
    assert text_size({"a": ["x" * 1000] * 10_000}) <= OFF_LOOP_BYTES + 1000  # counting stops early
    threads: list[int] = []
    decide = check.engine.decide

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return decide(*args, **kwargs)

    check.engine.decide = watched  # type: ignore[method-assign]
    small = await check.check_tool_call(call("delete_customer"))
    big = await check.check_tool_call(call("delete_customer", content="x" * (OFF_LOOP_BYTES + 1)))
    for verdict in (small, big):
        assert verdict is not None
        assert (verdict.decision, verdict.check) == (Decision.DENY, "policy/rule:no-deletes")
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()
