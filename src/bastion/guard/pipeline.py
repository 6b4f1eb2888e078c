"""The guard pipeline: an ordered list of checks every `tools/call` passes before it is forwarded.

Checks are small classes with hook methods, in the manner of mitmproxy addons. A check
returns `None` to pass the call on, or a `Verdict` to decide it and stop the chain.
The pipeline fails closed: a check that raises denies the call, naming the check.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from bastion.model import ALLOW, Decision, Principal, ToolCall, Verdict

logger = logging.getLogger(__name__)


@runtime_checkable
class Check(Protocol):
    """One guard. `name` appears in verdicts, audit records and the agent's error message."""

    name: str

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        """Decide the call (a `Verdict`) or pass it on (`None`)."""
        ...


@runtime_checkable
class ToolListFilter(Protocol):
    """An optional second hook: a check that also sees every `tools/list` result.

    It returns the tools the agent may see (it may drop entries, never add them). Checks
    that have this method are called in pipeline order by `GuardPipeline.filter_tools`.
    """

    name: str

    async def filter_tool_list(
        self, principal: Principal, server: str, tools: list[dict[str, Any]]
    ) -> list[dict[str, Any]]: ...


@runtime_checkable
class ResultCheck(Protocol):
    """An optional hook: a check that also sees each forwarded call's result (size caps, redaction).

    It returns a replacement result, or `None` to keep it. Called in pipeline order.
    """

    name: str

    async def check_tool_result(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any] | None: ...


@runtime_checkable
class ContentCheck(Protocol):
    """An optional hook: a check that also sees what other requests bring back to the agent
    (`resources/read` contents, `prompts/get` messages) and what servers send it
    (`sampling/createMessage`). `call` stands for the request: its `tool` is the method and its
    `arguments` the request's params. Returns a replacement, or `None` to keep it; raises
    `ContentWithheld` to withhold it."""

    name: str

    async def check_content(self, call: ToolCall, method: str, content: dict[str, Any]) -> dict[str, Any] | None: ...


class ContentWithheld(Exception):
    """A content check withholds what it saw; the message is for the agent (or the server)."""


@runtime_checkable
class CallEndListener(Protocol):
    """An optional hook: told when a call that entered the pipeline is over (answered, refused,
    failed or cancelled), so a check can release what it took for it (a concurrency slot).
    Must not block or raise."""

    name: str

    def tool_call_ended(self, call: ToolCall) -> None: ...


class ApprovalResolver(Protocol):
    """The approval stage: turns an `ask` verdict into allow or deny (see bastion.approvals.gate)."""

    async def resolve(self, call: ToolCall, asked: Verdict) -> Verdict: ...


DenialListener = Callable[[ToolCall, Verdict], None]
CheckTimer = Callable[[str, float], None]
"""Told a check's name and the seconds it took on one tool call."""
"""Told of every refused call (alerts); must not block or raise."""


class GuardPipeline:
    """Runs the checks in order; the first verdict wins; no verdict allows.

    An `ask` verdict goes to `approvals`; when a person approved, the remaining checks still
    run (an approval lifts the hold, not the other checks). Without `approvals`, ask denies.
    """

    def __init__(
        self,
        checks: Sequence[Check],
        *,
        approvals: ApprovalResolver | None = None,
        on_deny: DenialListener | None = None,
        on_flag: DenialListener | None = None,
    ) -> None:
        self.checks: tuple[Check, ...] = tuple(checks)
        self.approvals = approvals
        self.on_deny = on_deny
        self.on_flag = on_flag
        """Told of every allowed call marked `log` (the `call_flagged` alert); must not block or raise."""
        self.list_filters: tuple[ToolListFilter, ...] = tuple(c for c in checks if isinstance(c, ToolListFilter))
        self.result_checks: tuple[ResultCheck, ...] = tuple(c for c in checks if isinstance(c, ResultCheck))
        self.content_checks: tuple[ContentCheck, ...] = tuple(c for c in checks if isinstance(c, ContentCheck))
        self.end_listeners: tuple[CallEndListener, ...] = tuple(c for c in checks if isinstance(c, CallEndListener))
        self.check_timer: CheckTimer | None = None
        """Told how long each check took on a tool call (metrics, traces); never fails a call."""
        self.approval_timer: Callable[[float], None] | None = None
        """Told how long the approval stage took on a held call (traces); never fails a call."""

    async def filter_tools(
        self, principal: Principal, server: str, tools: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The tools of a `tools/list` result that `principal` may see. Fails closed: a filter that raises hides all."""
        for check in self.list_filters:
            try:
                tools = await check.filter_tool_list(principal, server, tools)
            except Exception:
                logger.exception("tool list filter %s failed on %s; hiding every tool", check.name, server)
                return []
        return tools

    async def check_result(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any]:
        """The result the agent gets for a forwarded call. Fails closed: a result check that raises withholds it."""
        for check in self.result_checks:
            try:
                replaced = await check.check_tool_result(call, result)
            except Exception as exc:
                logger.exception(
                    "result check %s failed on %s/%s; withholding the result", check.name, call.server, call.tool
                )
                return tool_error(
                    f"Bastion withheld this tool result: the {check.name} check failed ({type(exc).__name__}) "
                    f"[check: {check.name}]"
                )
            if replaced is not None:
                result = replaced
        return result

    async def check_content(self, call: ToolCall, method: str, content: dict[str, Any]) -> dict[str, Any]:
        """What the agent gets of a non-tool result (or a server's request). Raises `ContentWithheld`
        to withhold it, also when a check fails (fail closed)."""
        for check in self.content_checks:
            try:
                replaced = await check.check_content(call, method, content)
            except ContentWithheld:
                raise
            except Exception as exc:
                logger.exception("content check %s failed on %s %s; withholding it", check.name, call.server, method)
                raise ContentWithheld(
                    f"Bastion withheld this {method} result: the {check.name} check failed ({type(exc).__name__}) "
                    f"[check: {check.name}]"
                ) from exc
            if replaced is not None:
                content = replaced
        return content

    def ended(self, call: ToolCall) -> None:
        """Tell the checks that `call` is over. Never raises."""
        for listener in self.end_listeners:
            try:
                listener.tool_call_ended(call)
            except Exception:
                logger.exception("end-of-call hook of %s failed on %s/%s", listener.name, call.server, call.tool)

    async def evaluate(self, call: ToolCall) -> Verdict:
        verdict = await self._evaluate(call)
        if not verdict.allowed and self.on_deny is not None:
            try:
                self.on_deny(call, verdict)
            except Exception:
                logger.exception("denial listener failed on %s/%s", call.server, call.tool)
        elif verdict.log and self.on_flag is not None:
            try:
                self.on_flag(call, verdict)
            except Exception:
                logger.exception("flag listener failed on %s/%s", call.server, call.tool)
        return verdict

    async def _evaluate(self, call: ToolCall) -> Verdict:
        approved: Verdict | None = None
        timer = self.check_timer
        for check in self.checks:
            began = time.perf_counter() if timer is not None else 0.0
            try:
                verdict = await check.check_tool_call(call)
            except Exception as exc:
                logger.exception("guard check %s failed on %s/%s; denying", check.name, call.server, call.tool)
                return Verdict(
                    Decision.DENY,
                    f"the {check.name} check failed ({type(exc).__name__}), so the call is denied",
                    check=check.name,
                )
            if timer is not None:
                _time_check(timer, check.name, time.perf_counter() - began)
            if verdict is None:
                continue
            if not verdict.check:
                verdict = dataclasses.replace(verdict, check=check.name)
            if verdict.decision is Decision.ASK:
                if self.approvals is None:
                    return Verdict(Decision.DENY, f"human approval is required: {verdict.reason}", check=verdict.check)
                waited = time.perf_counter()
                asked = verdict
                try:
                    verdict = await self.approvals.resolve(call, verdict)
                except Exception as exc:
                    logger.exception("approval stage failed on %s/%s; denying", call.server, call.tool)
                    return Verdict(
                        Decision.DENY,
                        f"the approval stage failed ({type(exc).__name__}), so the call is denied",
                        check="approval",
                    )
                finally:
                    if self.approval_timer is not None:
                        _time_approval(self.approval_timer, time.perf_counter() - waited)
                if asked.source_call is not None and verdict.source_call is None:
                    # The record of a held call keeps naming the result its value came from.
                    verdict = dataclasses.replace(verdict, source_call=asked.source_call)
                if verdict.decision is Decision.ALLOW:
                    approved = verdict
                    continue
                if verdict.decision is Decision.ASK:  # a resolver must decide; fail closed
                    return Verdict(Decision.DENY, "the approval stage did not decide", check="approval")
            if approved is not None and verdict.allowed:
                # A later check allowed too; the record still names what admitted the held call.
                verdict = dataclasses.replace(
                    verdict,
                    approval_id=approved.approval_id,
                    allow_rule_id=approved.allow_rule_id,
                    source_call=approved.source_call,
                )
            return verdict
        return approved if approved is not None else ALLOW


def _time_check(timer: CheckTimer, name: str, seconds: float) -> None:
    try:
        timer(name, seconds)
    except Exception:
        logger.exception("check timer failed on %s", name)


def _time_approval(timer: Callable[[float], None], seconds: float) -> None:
    try:
        timer(seconds)
    except Exception:
        logger.exception("approval timer failed")


def tool_error(message: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `tools/call` result that tells the agent `message` as an error (`isError: true`)."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": message}], "isError": True}
    if meta:
        result["_meta"] = meta
    return result


def denial_message(verdict: Verdict) -> str:
    """The text an agent sees for a denied call: what was refused and which check refused it."""
    reason = verdict.reason or "denied by policy"
    return f"Bastion denied this tool call: {reason} [check: {verdict.check or 'unknown'}]"
