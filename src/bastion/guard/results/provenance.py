"""`ProvenanceCheck`: a side-effecting call that carries a value first seen in an untrusted or
flagged result is held for a person (`provenance.on_match: ask`) or denied, and the verdict
names the result the value came from.

A call is side-effecting (a sink) when a policy rule's `sink:` says so, else when
`results.tools.<glob>.sink` (the older alias) says so, or else when its name has a verb of the
catalogue's send / post / write / delete / payment / exec / share families and the server does
not declare it read-only. Any other call (whatever its name:
`get_webpage`, `fetch`, `browser_navigate`, `check_link`) is held when it carries a URL or host
that a *flagged* result brought in: following a planted link is itself a request out (its path
and query can carry data, the page the next injection), while following a link an ordinary page
of an untrusted server shows is what browsing is. Only `sink: false` exempts a tool from both.
Every call's argument values are noted as the agent's own: a value the agent wrote before a
result carried it is not tainted by it. A call is checked against the memory `provenance.scope`
names (its session's and its agent's by default). When that memory cannot be read (the shared
Redis is down) the check raises, and the pipeline denies the call (fail closed); failing to note
the agent's own values only makes later holds more likely, so it is logged, not fatal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from functools import partial

from bastion.guard.off_loop import OFF_LOOP_BYTES, run_sized, text_size
from bastion.guard.results.config import ResultsConfig, SettingsMemo
from bastion.guard.results.taint import TaintStore, Whose
from bastion.guard.results.values import argument_links, call_argument_values
from bastion.model import Decision, ToolCall, Verdict

CHECK_NAME = "provenance"
logger = logging.getLogger(__name__)
NOTE_RETRY = 1.0
"""After noting the agent's own values failed, seconds before it is tried again (a Redis that is down
is not waited on by every call)."""

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
    """See the module docstring. Runs before policy, so a rule that allows a call does not skip it.

    `sinks` says what the policy's `sink:` rules make of a call (None: no rule marks it)."""

    name = CHECK_NAME

    def __init__(
        self, config: ResultsConfig, taints: TaintStore, sinks: Callable[[ToolCall], bool | None] | None = None
    ) -> None:
        self.config = config
        self.taints = taints
        self.sinks = sinks
        self._note_failed_at = float("-inf")
        self._settings = SettingsMemo()

    def sink_override(self, call: ToolCall) -> bool | None:
        """A policy rule's `sink:` for the call, else `results.tools.<glob>.sink`, else None."""
        marked = self.sinks(call) if self.sinks is not None else None
        return marked if marked is not None else self._settings(self.config, call.server, call.tool).sink

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        whose = Whose(call.principal.agent, call.session)
        provenance = self.config.provenance
        # Nothing remembered that a value could match: the values are noted while the call is on its way.
        later = partial(call_argument_values, call.call_id, call.arguments)
        if (
            self.config.enabled
            and provenance.enabled
            and text_size(call.arguments) <= OFF_LOOP_BYTES
            and self.taints.note_soon(whose, provenance.scope, later)
        ):
            return None
        values = await run_sized(call.arguments, call_argument_values, call.call_id, call.arguments)
        verdict: Verdict | None = None
        checked = self.config.enabled and provenance.enabled and bool(values)
        override = self.sink_override(call) if checked else None
        sink = checked and is_sink(call, override)
        watched = values if sink else argument_links(call.arguments) if override is None else set()
        if checked and watched:
            # One step: looked up, then noted as the agent's own (a failure here denies the call).
            found = await self.taints.find_and_note(
                whose, sorted(watched), values, scope=provenance.scope, flagged_only=not sink
            )
            if found is not None:
                value, source = found
                decision = Decision.ASK if provenance.on_match == "ask" else Decision.DENY
                reason = (
                    f"argument value {_short(value)!r} first appeared in a result of {source.server}.{source.tool} "
                    f"{source.why} (call {source.correlation_id})"
                )
                verdict = Verdict(decision, reason, check=CHECK_NAME, source_call=source.correlation_id)
        elif values and time.monotonic() - self._note_failed_at >= NOTE_RETRY:
            try:
                await self.taints.note_arguments(whose, values)
            except Exception:  # only makes later holds likelier: never a reason to refuse this call
                self._note_failed_at = time.monotonic()
                logger.warning("could not note the argument values of %s/%s", call.server, call.tool, exc_info=True)
        return verdict


def _short(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."
