"""`PolicyCheck`: the policy engine as a guard pipeline check, and as a `tools/list` filter."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from bastion.guard.off_loop import run_sized
from bastion.guard.policy.engine import PolicyEngine
from bastion.guard.policy.lint import CompiledPolicy
from bastion.guard.policy.rules import Subject
from bastion.model import Principal, ToolCall, Verdict

logger = logging.getLogger(__name__)


class PolicyCheck:
    """Decides each call by rules, catalogue and profile; hides tools every call of which a rule denies."""

    name = "policy"

    def __init__(self, policy: CompiledPolicy, engine: PolicyEngine | None = None) -> None:
        self.policy = policy
        self.engine = engine or PolicyEngine(policy.rules, profile=policy.profile, catalogue_settings=policy.catalogue)

    def subject(self, principal: Principal, server: str, tool: str, definition: Mapping[str, Any] | None) -> Subject:
        annotations: Mapping[str, Any] | None = None
        if definition is not None:
            declared = definition.get("annotations")
            annotations = declared if isinstance(declared, Mapping) else {}
        roles = self.policy.roles.get(principal.agent, frozenset())
        return Subject(principal.agent, roles, server, tool, annotations)

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        subject = self.subject(call.principal, call.server, call.tool, call.definition)
        decide = partial(self.engine.decide, subject, call.arguments, self.policy.context_for(call.server))
        # Parsing a large payload takes milliseconds: on a worker thread, the event loop serves other agents.
        return (await run_sized(call.arguments, decide)).verdict

    async def filter_tool_list(
        self, principal: Principal, server: str, tools: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The tools no rule denies outright for this agent (a rule on name, agent, server, annotations alone)."""
        visible = []
        for tool in tools:
            name = tool.get("name")
            if not isinstance(name, str):
                continue
            hidden_by = self.engine.hides(self.subject(principal, server, name, tool))
            if hidden_by is None:
                visible.append(tool)
            else:
                logger.debug("tool %s/%s hidden from %s by rule %s", server, name, principal.agent, hidden_by.id)
        return visible
