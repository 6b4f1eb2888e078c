"""`ProvenanceCheck`: a side-effecting call that carries a value first seen in an untrusted or
flagged result is held for a person (`provenance.on_match: ask`) or denied, and the verdict
names the result the value came from.

A call is side-effecting (a sink) when `results.tools.<glob>.sink` says so, or else when its
name has a verb of the catalogue's send / post / write / delete / payment / exec / share
families and the server does not declare it read-only. Any other call (whatever its name:
`get_webpage`, `fetch`, `browser_navigate`, `check_link`) is held when it carries a URL or host
that a *flagged* result brought in: following a planted link is itself a request out (its path
and query can carry data, the page the next injection), while following a link an ordinary page
of an untrusted server shows is what browsing is. Only `sink: false` exempts a tool from both.
Every call's argument values are noted as the agent's own: a value the agent wrote before a
result carried it is not tainted by it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bastion.guard.results.config import ResultsConfig
from bastion.guard.results.taint import FLAGGED, TaintSource, TaintStore
from bastion.guard.results.values import argument_links, argument_values
from bastion.model import Decision, ToolCall, Verdict

CHECK_NAME = "provenance"

SINK_WORDS = frozenset({
    "send", "post", "reply", "forward", "publish", "broadcast", "notify", "message", "email", "mail", "dm", "invite",
    "share", "upload", "write", "edit", "create", "update", "append", "put", "patch", "set", "save", "move", "rename",
    "copy", "delete", "remove", "drop", "truncate", "destroy", "transfer", "pay", "payment", "charge", "refund",
    "withdraw", "deposit", "schedule", "reschedule", "book", "reserve", "cancel", "exec", "execute", "run", "shell",
    "command", "eval", "deploy", "push", "commit", "merge", "submit", "grant", "add", "insert", "change", "modify",
    "password", "order", "purchase", "buy", "tweet", "comment", "webhook",
    "sms", "dial", "fax", "print", "sign", "approve", "accept", "assign", "subscribe", "unsubscribe", "follow", "rate",
    "register", "apply", "give", "revoke", "reset", "install", "export", "donate", "sell", "trade", "rsvp", "checkout",
    "archive", "restore", "enable", "disable",
})  # fmt: skip
"""Verbs (and nouns used as verbs) in tool names that make a call side-effecting or able to send data out."""
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def is_sink(call: ToolCall, override: bool | None) -> bool:
    """Whether `call` can send, change or delete something (see the module docstring)."""
    if override is not None:
        return override
    annotations = call.definition.get("annotations") if call.definition is not None else None
    if isinstance(annotations, Mapping) and annotations.get("readOnlyHint") is True:
        return False
    return bool(_words(call.tool) & SINK_WORDS)


def _words(tool: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(tool)}


class ProvenanceCheck:
    """See the module docstring. Runs before policy, so a rule that allows a call does not skip it."""

    name = CHECK_NAME

    def __init__(self, config: ResultsConfig, taints: TaintStore) -> None:
        self.config = config
        self.taints = taints

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        agent = call.principal.agent
        values = argument_values(call.arguments)
        verdict: Verdict | None = None
        settings = self.config.settings(call.server, call.tool)
        provenance = self.config.provenance
        checked = self.config.enabled and provenance.enabled and bool(values)
        sink = checked and is_sink(call, settings.sink)
        watched = values if sink else argument_links(call.arguments) if settings.sink is None else set()
        if checked and watched:
            found = await self._find(agent, sorted(watched), flagged_only=not sink)
            if found is not None:
                value, source = found
                decision = Decision.ASK if provenance.on_match == "ask" else Decision.DENY
                reason = (
                    f"argument value {_short(value)!r} first appeared in a result of {source.server}.{source.tool} "
                    f"{source.why} (call {source.correlation_id})"
                )
                verdict = Verdict(decision, reason, check=CHECK_NAME)
        await self.taints.note_arguments(agent, values)
        return verdict

    async def _find(self, agent: str, values: list[str], *, flagged_only: bool) -> tuple[str, TaintSource] | None:
        if not flagged_only:
            return await self.taints.find(agent, values)
        for value in values:
            found = await self.taints.find(agent, [value])
            if found is not None and found[1].why.startswith(FLAGGED):
                return found
        return None


def _short(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."
