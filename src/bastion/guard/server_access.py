"""The first check: an agent may only call tools on servers its credential allows."""

from __future__ import annotations

from bastion.model import Decision, ToolCall, Verdict


class ServerAccessCheck:
    """Denies calls to servers outside the principal's allowed set.

    The HTTP front door already answers 403 for such servers; this check keeps the rule
    true on every path into the pipeline.
    """

    name = "server-access"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        if call.principal.may_reach(call.server):
            return None
        return Verdict(Decision.DENY, f"agent {call.principal.agent!r} may not use server {call.server!r}")
