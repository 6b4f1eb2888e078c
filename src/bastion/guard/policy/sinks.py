"""Which tools a policy rule marks as sinks (`sink: true`) or never sinks (`sink: false`).

A sink is a side-effecting call that provenance holds when it carries a value an untrusted or
flagged result brought in (bastion.guard.results.provenance). The first rule, in policy order,
whose `match` holds for the call and that sets `sink` decides; no such rule: `None` (then the
`results.tools.<glob>.sink` alias, then the tool's name, decide).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.guard.policy.lint import CompiledPolicy
from bastion.guard.policy.rules import Rule, Subject
from bastion.model import ToolCall


def subject_of(policy: CompiledPolicy, call: ToolCall) -> Subject:
    """The call as rules match it: agent, roles, server, tool and the tool's declared annotations."""
    annotations: Mapping[str, Any] | None = None
    if call.definition is not None:
        declared = call.definition.get("annotations")
        annotations = declared if isinstance(declared, Mapping) else {}
    roles = policy.roles.get(call.principal.agent, frozenset())
    return Subject(call.principal.agent, roles, call.server, call.tool, annotations)


class SinkRules:
    """The policy's `sink:` rules, asked per call."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.rules: tuple[Rule, ...] = policy.sinks

    def __call__(self, call: ToolCall) -> bool | None:
        """`True`/`False` when a rule marks the call's tool; `None` when none does."""
        if not self.rules:
            return None
        subject = subject_of(self.policy, call)
        for rule in self.rules:
            if rule.matches_statically(subject):
                return rule.sink
        return None
