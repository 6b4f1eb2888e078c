"""Communication: sending email, chat and other messages on the user's behalf.

Judged from the tool name's words (a send/post/reply/forward verb and a message object, or a
messaging server) and the arguments (recipients, channels, `@everyone`). Reading, searching and
saving drafts send nothing and are not flagged. Limit: whether a recipient is "external" needs
the organisation's domains, which the scan does not know; every send is held, and bulk, hidden
and personal-mailbox recipients are named as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.view import CallView
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
H, M = Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("comm.send_email", "Send an email", "An email (or a saved draft) sent on the user's behalf.", M, ASK),
    entry("comm.chat_message", "Post a chat message", "A message posted to Slack, Teams, Discord, ... as the user.",
          M, ASK),
    entry("comm.hidden_recipient", "Hidden or personal-mailbox recipient", "A BCC recipient, or a recipient at a "
          "personal mailbox provider (gmail, protonmail, ...).", H, DENY),
    entry("comm.mass_message", "Mass message", "Many recipients (more than 10) or @channel / @everyone / @here.", H,
          DENY),
    entry("comm.forward_rule", "Auto-forwarding or mail filter", "A mail rule or filter that forwards mail "
          "elsewhere.", H, DENY),
    entry("comm.sms_or_call", "Send an SMS or place a call", "Text messages and phone calls through Twilio and "
          "similar.", M, ASK),
    entry("comm.social_post", "Publish a public post", "A post to a public social network or blog.", M, ASK),
    entry("comm.delete_messages", "Delete messages", "Deleting emails, chat messages or channels.", M, ASK),
    entry("comm.channel_admin", "Change channel membership or sharing", "Inviting external users, sharing or "
          "archiving channels.", M, ASK),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}

_SEND = frozenset({"send", "post", "reply", "forward", "publish", "broadcast", "notify", "message", "dm", "chat"})
_MAIL = frozenset({"email", "mail", "gmail", "outlook", "draft", "smtp", "mailgun", "sendgrid", "ses", "postmark"})
_CHAT = frozenset({"slack", "teams", "discord", "telegram", "chat", "message", "messages", "channel", "thread",
                   "whatsapp", "mattermost", "matrix", "signal", "dm", "zulip", "rocketchat"})  # fmt: skip
_READ = frozenset({"get", "list", "read", "search", "find", "fetch", "history", "lookup", "info", "retrieve",
                   "download", "summarize", "count", "view"})  # fmt: skip
_PERSONAL = re.compile(r"@(gmail|googlemail|protonmail|proton|yahoo|outlook|hotmail|live|icloud|me|gmx|aol|yandex"
                       r"|mail|tutanota|zoho|fastmail|hey)\.[a-z.]+$", re.I)  # fmt: skip
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(\.[\w\-]+)+")


def detect(call: CallView) -> Iterator[Finding]:
    words, all_words = call.tool_words, call.words
    if words & _READ and not words & {"send", "post", "reply", "forward"}:
        return
    if words & {"filter", "rule", "forwarding", "autoforward"} and words & {"create", "add", "update", "set"}:
        yield Finding(_BY_ID["comm.forward_rule"], f"tool {call.tool} changes mail routing", "arguments")
        return
    if words & {"delete", "remove", "trash", "purge"} and words & (_MAIL | _CHAT | {"messages", "emails"}):
        yield Finding(_BY_ID["comm.delete_messages"], f"tool {call.tool} deletes messages", "arguments")
        return
    if words & {"invite", "share", "archive", "kick"} and words & {"channel", "conversation", "user", "users"}:
        yield Finding(_BY_ID["comm.channel_admin"], f"tool {call.tool}", "arguments")
        return
    sends = bool(words & _SEND) and not (words & {"draft"} and words & {"create", "save", "update"} and
                                         not words & {"send"})  # fmt: skip
    if words & {"draft"} and words & {"create", "save", "update", "delete"} and "send" not in words:
        return
    if not sends:
        return
    if words & {"sms", "mms", "call", "voice", "twilio", "whatsapp"} or all_words & {"twilio"}:
        yield Finding(_BY_ID["comm.sms_or_call"], f"tool {call.tool} sends a text or call", "arguments")
    elif all_words & _MAIL or words & {"email", "mail"}:
        yield Finding(_BY_ID["comm.send_email"], f"tool {call.tool} sends email", "arguments")
    elif all_words & {"twitter", "tweet", "x", "mastodon", "bluesky", "linkedin", "reddit", "facebook", "wordpress"}:
        yield Finding(_BY_ID["comm.social_post"], f"tool {call.tool} publishes a post", "arguments")
    elif all_words & _CHAT:
        yield Finding(_BY_ID["comm.chat_message"], f"tool {call.tool} posts a message", "arguments")
    yield from _recipients(call)


def _recipients(call: CallView) -> Iterator[Finding]:
    count = 0
    for s in call.strings:
        key = s.key.lower()
        if key in ("bcc",) and s.value.strip():
            yield Finding(_BY_ID["comm.hidden_recipient"], f"BCC recipient {s.value[:60]}", s.path)
        if key in ("to", "cc", "bcc", "recipients", "recipient", "email", "emails"):
            for m in _EMAIL.finditer(s.value):
                count += 1
                if _PERSONAL.search(m.group(0)) and key != "bcc":
                    yield Finding(_BY_ID["comm.hidden_recipient"], f"personal mailbox {m.group(0)}", s.path)
        if re.search(r"<!(channel|everyone|here)>|@(channel|everyone|here)\b", s.value):
            yield Finding(_BY_ID["comm.mass_message"], f"mass mention in {s.path}", s.path)
    if count > 10:
        yield Finding(_BY_ID["comm.mass_message"], f"{count} recipients", "arguments")
