"""The guard pipeline: an ordered list of checks every `tools/call` passes before it is forwarded.

Checks are small classes with hook methods, in the manner of mitmproxy addons. A check
returns `None` to pass the call on, or a `Verdict` to decide it and stop the chain.
The pipeline fails closed: a check that raises denies the call, naming the check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bastion.model import ALLOW, Decision, ToolCall, Verdict

logger = logging.getLogger(__name__)


@runtime_checkable
class Check(Protocol):
    """One guard. `name` appears in verdicts, audit records and the agent's error message."""

    name: str

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        """Decide the call (a `Verdict`) or pass it on (`None`)."""
        ...


class GuardPipeline:
    """Runs the checks in order; the first verdict wins; no verdict allows."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks: tuple[Check, ...] = tuple(checks)

    async def evaluate(self, call: ToolCall) -> Verdict:
        for check in self.checks:
            try:
                verdict = await check.check_tool_call(call)
            except Exception as exc:
                logger.exception("guard check %s failed on %s/%s; denying", check.name, call.server, call.tool)
                return Verdict(
                    Decision.DENY,
                    f"the {check.name} check failed ({type(exc).__name__}), so the call is denied",
                    check=check.name,
                )
            if verdict is None:
                continue
            if not verdict.check:
                verdict = Verdict(verdict.decision, verdict.reason, check=check.name)
            if verdict.decision is Decision.ASK:
                # The approval queue does not exist yet: holding means refusing, with a reason.
                return Verdict(Decision.DENY, f"human approval is required: {verdict.reason}", check=verdict.check)
            return verdict
        return ALLOW


def denial_message(verdict: Verdict) -> str:
    """The text an agent sees for a denied call: what was refused and which check refused it."""
    reason = verdict.reason or "denied by policy"
    return f"Bastion denied this tool call: {reason} [check: {verdict.check or 'unknown'}]"
