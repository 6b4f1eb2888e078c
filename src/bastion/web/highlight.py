"""A held call's arguments as pretty JSON, with the parts that got it held marked.

What is marked comes from the policy's own dry run of the call (`guard.policy.dryrun`): the
argument paths of the deciding rule's `when` conditions, and where each catalogue finding was
seen. Everything is HTML-escaped here; only the `<mark>` and `<span>` tags are ours.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from bastion.approvals.model import Approval
from bastion.guard.policy.dryrun import DryRunCall, decide, engine_for
from bastion.guard.policy.lint import CompiledPolicy
from bastion.guard.policy.paths import MAX_DEPTH, Step

Token = str | int


@dataclass(frozen=True, slots=True)
class Flags:
    """Concrete paths (`arguments.steps[2].cmd`, as the catalogue reports them) and rule path patterns."""

    paths: frozenset[str] = frozenset()
    patterns: tuple[tuple[Step, ...], ...] = ()

    def marks(self, text: str, tokens: Sequence[Token]) -> bool:
        return text in self.paths or any(_matches(tokens, pattern) for pattern in self.patterns)


def flags_for(policy: CompiledPolicy, approval: Approval) -> Flags:
    """What the policy sees in this held call's arguments; no flags if the dry run cannot tell."""
    try:
        call = DryRunCall(None, approval.server, approval.tool, approval.arguments, agent=approval.agent)
        decision = decide(engine_for(policy), policy, call)
    except Exception:  # a display aid only: the call is shown unmarked rather than not at all
        return Flags()
    patterns: tuple[tuple[Step, ...], ...] = ()
    if decision.decided_by.startswith("rule:"):
        rule_id = decision.decided_by.removeprefix("rule:")
        rule = next((r for r in policy.rules if r.id == rule_id), None)
        if rule is not None:
            patterns = tuple(condition.steps for condition in rule.conditions)
    return Flags(frozenset(f.path for f in decision.findings if f.path), patterns)


class HighlightedArguments:
    """`pretty_arguments(approval.arguments, flags_for(policy, approval))`, remembered per approval.

    A held call's arguments never change and the policy is fixed for the dashboard's life,
    so each call is dry-run once, not on every refresh of the queue.
    """

    def __init__(self, policy: CompiledPolicy, size: int = 1024) -> None:
        self.policy = policy
        self.size = size
        self._rendered: collections.OrderedDict[str, Markup] = collections.OrderedDict()

    def __call__(self, approval: Approval) -> Markup:
        rendered = self._rendered.get(approval.id)
        if rendered is None:
            rendered = pretty_arguments(approval.arguments, flags_for(self.policy, approval))
            self._rendered[approval.id] = rendered
            if len(self._rendered) > self.size:
                self._rendered.popitem(last=False)
        else:
            self._rendered.move_to_end(approval.id)
        return rendered


def _matches(tokens: Sequence[Token], steps: Sequence[Step]) -> bool:
    if not steps:
        return not tokens
    step = steps[0]
    if step.kind == "deep":
        return _matches(tokens, steps[1:]) or (bool(tokens) and _matches(tokens[1:], steps))
    if not tokens:
        return False
    token = tokens[0]
    if step.kind == "any":
        return _matches(tokens[1:], steps[1:])
    if step.kind == "index":
        return token == step.index and _matches(tokens[1:], steps[1:])
    if isinstance(token, int):  # a key step that meets a list applies to each item
        return _matches(tokens[1:], steps)
    return token == step.key and _matches(tokens[1:], steps[1:])


def pretty_arguments(arguments: Mapping[str, Any], flags: Flags) -> Markup:
    """`arguments` as indented JSON in HTML, flagged values wrapped in `<mark class="flag">`."""
    return Markup(_render(dict(arguments), "arguments", (), flags, 0))


def _render(value: Any, text: str, tokens: tuple[Token, ...], flags: Flags, depth: int) -> str:
    if depth > MAX_DEPTH:
        body = str(escape(json.dumps(value, ensure_ascii=False, default=str)))
    elif isinstance(value, Mapping) and value:
        pad, inner = "  " * depth, "  " * (depth + 1)
        items = [
            f'{inner}<span class="key">{escape(json.dumps(str(k), ensure_ascii=False))}</span>: '
            + _render(v, f"{text}.{k}", (*tokens, str(k)), flags, depth + 1)
            for k, v in value.items()
        ]
        body = "{\n" + ",\n".join(items) + f"\n{pad}}}"
    elif isinstance(value, list | tuple) and value:
        pad, inner = "  " * depth, "  " * (depth + 1)
        items = [inner + _render(v, f"{text}[{i}]", (*tokens, i), flags, depth + 1) for i, v in enumerate(value)]
        body = "[\n" + ",\n".join(items) + f"\n{pad}]"
    else:
        body = str(escape(json.dumps(value, ensure_ascii=False, default=str)))
    if tokens and flags.marks(text, tokens):
        return f'<mark class="flag">{body}</mark>'
    return body
