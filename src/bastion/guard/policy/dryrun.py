"""Dry runs: decide calls read from a file (`bastion policy check`) or explain one (`bastion policy explain`).

Nothing is forwarded and no server is started. A call's server need not be configured: it
is then judged with an empty context (no roots, no domains), plus what its `context` gives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.guard.policy.engine import PolicyDecision, PolicyEngine
from bastion.guard.policy.lint import CompiledPolicy
from bastion.guard.policy.rules import Subject
from bastion.guard.policy.server_context import ServerContext

DRY_RUN_AGENT = "policy-check"
"""The agent a dry-run call is attributed to when its line names none."""


class CallLineError(ValueError):
    """A line of a calls file that is not a call."""


@dataclass(frozen=True, slots=True)
class DryRunCall:
    """One call to decide, as read from a calls file."""

    id: Any
    server: str
    tool: str
    arguments: Mapping[str, Any]
    context: Mapping[str, Any] | None = None
    agent: str = DRY_RUN_AGENT
    annotations: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Any) -> DryRunCall:
        if not isinstance(data, dict):
            raise CallLineError("a line must be a JSON object")
        for key in ("server", "tool"):
            if not isinstance(data.get(key), str):
                raise CallLineError(f"`{key}` must be a string")
        arguments = data.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise CallLineError("`arguments` must be an object")
        context = data.get("context")
        if context is not None and not isinstance(context, dict):
            raise CallLineError("`context` must be an object")
        annotations = data.get("annotations")
        if annotations is not None and not isinstance(annotations, dict):
            raise CallLineError("`annotations` must be an object")
        agent = data.get("agent", DRY_RUN_AGENT)
        if not isinstance(agent, str):
            raise CallLineError("`agent` must be a string")
        return cls(data.get("id"), data["server"], data["tool"], arguments, context, agent, annotations)


def context_for(policy: CompiledPolicy, server: str, given: Mapping[str, Any] | None) -> ServerContext:
    """The server's configured context, with what the call's `context` sets in its place."""
    context = policy.context_for(server)
    if not given:
        return context
    roots = _strings(given.get("allowed_roots"), "allowed_roots")
    domains = _strings(given.get("allowed_domains"), "allowed_domains")
    return ServerContext(
        roots=roots if roots is not None else context.roots,
        domains=domains if domains is not None else context.domains,
    )


def _strings(value: Any, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CallLineError(f"`context.{key}` must be a list of strings")
    return tuple(value)


def decide(engine: PolicyEngine, policy: CompiledPolicy, call: DryRunCall, *, explain: bool = False) -> PolicyDecision:
    roles = policy.roles.get(call.agent, frozenset())
    subject = Subject(call.agent, roles, call.server, call.tool, call.annotations)
    return engine.decide(subject, call.arguments, context_for(policy, call.server, call.context), explain=explain)


def result_line(call_id: Any, decision: PolicyDecision) -> dict[str, Any]:
    """What `bastion policy check` prints for one call."""
    verdict = decision.verdict
    return {
        "id": call_id,
        "decision": str(verdict.decision),
        "rule": decision.decided_by,
        "reason": verdict.reason,
        "log": verdict.log,
        "findings": sorted({f.entry.id for f in decision.findings}),
    }


def check_lines(engine: PolicyEngine, policy: CompiledPolicy, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """One result per non-blank input line, in order; a bad line gives `{"id", "line", "error"}`."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        call_id: Any = None
        try:
            data = json.loads(text)
            call_id = data.get("id") if isinstance(data, dict) else None
            call = DryRunCall.from_json(data)
            yield result_line(call.id, decide(engine, policy, call))
        except (json.JSONDecodeError, CallLineError) as exc:
            yield {"id": call_id, "line": number, "error": str(exc)}


def explanation(decision: PolicyDecision, call: DryRunCall) -> list[str]:
    """`bastion policy explain`'s text: every rule and finding considered, then the verdict."""
    out = [f"call: agent {call.agent!r}, server {call.server!r}, tool {call.tool!r}"]
    for step in decision.considered:
        mark = "✔" if step.applies else "·"
        action = f" -> {step.decision}" if step.decision is not None else ""
        out.append(f"  {mark} {step.kind} {step.id}{action}: {step.why}")
    verdict = decision.verdict
    log = " (log)" if verdict.log else ""
    out.append(f"verdict: {verdict.decision}{log} by {decision.decided_by}: {verdict.reason}")
    return out


def engine_for(policy: CompiledPolicy) -> PolicyEngine:
    return PolicyEngine(policy.rules, profile=policy.profile, catalogue_settings=policy.catalogue)
