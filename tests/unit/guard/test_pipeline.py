from __future__ import annotations

import pytest

from bastion.guard.pipeline import GuardPipeline, denial_message
from bastion.guard.server_access import ServerAccessCheck
from bastion.model import Decision, Principal, ToolCall, Verdict


class Fixed:
    def __init__(self, name: str, verdict: Verdict | None = None, error: Exception | None = None) -> None:
        self.name = name
        self.verdict = verdict
        self.error = error
        self.seen = 0

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        self.seen += 1
        if self.error is not None:
            raise self.error
        return self.verdict


def call(server: str = "files", servers: frozenset[str] | None = None) -> ToolCall:
    return ToolCall("c1", Principal("agent", servers), server, "read_file", {"path": "/tmp/x"})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("checks", "decision", "check", "reason_part"),
    [
        ([], Decision.ALLOW, "", ""),
        ([Fixed("a"), Fixed("b")], Decision.ALLOW, "", ""),
        ([Fixed("a", Verdict(Decision.DENY, "no"))], Decision.DENY, "a", "no"),
        ([Fixed("a", error=KeyError("x"))], Decision.DENY, "a", "the a check failed (KeyError)"),
        ([Fixed("a"), Fixed("b", Verdict(Decision.ASK, "risky"))], Decision.DENY, "b", "human approval is required"),
        ([Fixed("a", Verdict(Decision.ALLOW)), Fixed("b", Verdict(Decision.DENY, "late"))], Decision.ALLOW, "a", ""),
    ],
)
async def test_first_verdict_wins_and_errors_deny(checks, decision, check, reason_part):
    verdict = await GuardPipeline(checks).evaluate(call())
    assert verdict.decision is decision
    assert verdict.check == check
    assert reason_part in verdict.reason


@pytest.mark.anyio
async def test_checks_after_a_verdict_do_not_run():
    later = Fixed("later")
    await GuardPipeline([Fixed("first", Verdict(Decision.DENY, "stop")), later]).evaluate(call())
    assert later.seen == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("servers", "allowed"), [(None, True), (frozenset({"files"}), True), (frozenset({"crm"}), False)]
)
async def test_server_access(servers, allowed):
    verdict = await GuardPipeline([ServerAccessCheck()]).evaluate(call(servers=servers))
    assert verdict.allowed is allowed
    if not allowed:
        assert "may not use server 'files'" in denial_message(verdict)
        assert "[check: server-access]" in denial_message(verdict)


class Hider:
    def __init__(self, name: str, hide: str = "", error: Exception | None = None) -> None:
        self.name = name
        self.hide = hide
        self.error = error

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        return None

    async def filter_tool_list(self, principal: Principal, server: str, tools: list[dict]) -> list[dict]:
        if self.error is not None:
            raise self.error
        return [t for t in tools if t["name"] != self.hide]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("checks", "visible"),
    [
        ([], ["a", "b", "c"]),
        ([Fixed("plain")], ["a", "b", "c"]),
        ([Hider("h1", "a"), Fixed("plain"), Hider("h2", "c")], ["b"]),
        ([Hider("h1", "a"), Hider("broken", error=RuntimeError("x"))], []),
    ],
)
async def test_tool_list_filters_run_in_order_and_fail_closed(checks, visible):
    tools = [{"name": n} for n in ("a", "b", "c")]
    shown = await GuardPipeline(checks).filter_tools(Principal("agent"), "files", tools)
    assert [t["name"] for t in shown] == visible


class ResultHook:
    """A check with the optional result and end-of-call hooks."""

    def __init__(self, name: str, replace: dict[str, object] | None = None, error: Exception | None = None) -> None:
        self.name = name
        self.replace = replace
        self.error = error
        self.ended: list[str] = []

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        return None

    async def check_tool_result(self, call: ToolCall, result: dict[str, object]) -> dict[str, object] | None:
        if self.error is not None:
            raise self.error
        return self.replace

    def tool_call_ended(self, call: ToolCall) -> None:
        self.ended.append(call.call_id)
        if self.error is not None:
            raise self.error


@pytest.mark.anyio
async def test_result_checks_replace_in_order_and_fail_closed() -> None:
    result: dict[str, object] = {"content": [{"type": "text", "text": "secret"}], "isError": False}
    keep, swap = ResultHook("keep"), ResultHook("swap", {"content": [], "isError": True})
    assert await GuardPipeline([keep, swap]).check_result(call(), result) == {"content": [], "isError": True}
    assert await GuardPipeline([keep]).check_result(call(), result) is result
    withheld = await GuardPipeline([ResultHook("boom", error=ValueError("x"))]).check_result(call(), result)
    assert withheld["isError"] is True
    assert "the boom check failed (ValueError)" in withheld["content"][0]["text"]  # type: ignore[index]
    assert "secret" not in str(withheld)


def test_every_end_listener_is_told_and_none_may_raise() -> None:
    failing, fine = ResultHook("failing", error=RuntimeError("x")), ResultHook("fine")
    pipeline = GuardPipeline([failing, fine, Fixed("plain")])
    pipeline.ended(call())
    assert failing.ended == fine.ended == ["c1"]
    assert [c.name for c in pipeline.end_listeners] == ["failing", "fine"]


class Deciding:
    """An approval stage that decides at once, as the gate does (a new verdict of its own)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    async def resolve(self, call: ToolCall, asked: Verdict) -> Verdict:
        return Verdict(self.decision, f"a person said {self.decision}", check="approval")


@pytest.mark.anyio
@pytest.mark.parametrize("decision", [Decision.DENY, Decision.ALLOW])
async def test_a_held_calls_verdict_keeps_naming_the_result_its_value_came_from(decision: Decision) -> None:
    asked = Verdict(Decision.ASK, "value from a poisoned result", source_call="c0ffee")
    pipeline = GuardPipeline([Fixed("provenance", asked), Fixed("policy")], approvals=Deciding(decision))
    verdict = await pipeline.evaluate(call())
    assert verdict.decision is decision
    assert verdict.source_call == "c0ffee"
