"""Browser automation: navigation, typing credentials, submitting forms, downloads and page scripts.

Tools are recognised by their name's words (`browser_navigate`, `page_click`, `fill_form`,
`evaluate`) on a browser server (playwright, puppeteer, selenium, browser...). Which click
"submits" is judged from the element's description (pay, place order, delete, transfer...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.net import host_allowed, host_of
from bastion.guard.policy.catalogue.view import CallView
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("browser.navigate_off_allowlist", "Navigate off the allowlist", "Opening a page on a host not on the "
          "allowlist.", M, ASK),
    entry("browser.credential_login", "Type a password", "Filling a password, passcode or secret field.", H, ASK),
    entry("browser.payment_entry", "Type card details", "Typing a card number (Luhn-valid) or CVV.", C, DENY),
    entry("browser.form_submit", "Submit a consequential form", "Clicking or submitting pay, buy, place order, "
          "confirm, delete, transfer, send ...", H, ASK),
    entry("browser.download", "Download an executable", "Navigating to or downloading .exe, .sh, .dmg, .msi, .apk, "
          "... files, from any host.", H, DENY),
    entry("browser.script_exfil", "Page script that sends data", "Evaluated JavaScript that reads cookies or "
          "storage, or sends requests to a host.", H, DENY),
    entry("browser.file_upload", "Upload a local file", "Uploading a local file into a page.", M, ASK),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}
_BROWSER = frozenset({"browser", "playwright", "puppeteer", "selenium", "page", "chrome", "chromium", "webdriver",
                      "navigate", "browserbase", "stagehand"})  # fmt: skip
_CONSEQUENTIAL = re.compile(r"(?i)\b(pay|payment|buy|purchase|place\s+order|order\s+now|checkout|confirm|submit|"
                            r"delete|remove|transfer|send|wire|withdraw|sign\s+up|subscribe|authori[sz]e|approve|"
                            r"publish|book|donate|unsubscribe|close\s+account)\b")  # fmt: skip
_SECRET_FIELD = re.compile(r"(?i)pass(word|wd|code|phrase)?\b|\bpin\b|secret|otp|2fa|one[-\s]?time|security code")
_CARD_FIELD = re.compile(r"(?i)card|cvv|cvc|ccv|expir")
_EXEC_EXT = re.compile(r"(?i)\.(exe|msi|dmg|pkg|app|sh|bat|cmd|ps1|scr|apk|deb|rpm|jar|appimage|run|bin|vbs)$")
_SCRIPT_SEND = re.compile(r"fetch\s*\(|XMLHttpRequest|sendBeacon|WebSocket\s*\(|new\s+Image|\.src\s*=|"
                          r"location(\.href)?\s*=|window\.open")  # fmt: skip
_SCRIPT_READ = re.compile(r"document\.cookie|localStorage|sessionStorage|indexedDB|\.value\b|credentials")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def detect(call: CallView) -> Iterator[Finding]:
    words = call.tool_words
    if not call.words & _BROWSER:
        return
    domains = call.context.allowed_domains
    for s in call.urls:
        path = s.value.split("?", 1)[0].split("#", 1)[0]
        host = host_of(s.value)
        off = bool(domains) and host is not None and not host_allowed(host, domains)
        if _EXEC_EXT.search(path):
            yield Finding(_BY_ID["browser.download"], f"executable download {path[-60:]} in {s.path}", s.path)
        elif off and words & {"navigate", "goto", "open", "visit", "tab", "new"}:
            yield Finding(_BY_ID["browser.navigate_off_allowlist"], f"{host} in {s.path}", s.path)
    if words & {"evaluate", "eval", "script", "execute", "run", "javascript", "js"}:
        for s in call.strings:
            if _SCRIPT_SEND.search(s.value) or _SCRIPT_READ.search(s.value):
                yield Finding(_BY_ID["browser.script_exfil"], f"page script in {s.path}", s.path)
                break
    if words & {"upload", "file", "files"} and words & {"upload", "set", "choose"}:
        yield Finding(_BY_ID["browser.file_upload"], f"tool {call.tool}", "arguments")
    yield from _typing(call)
    if words & {"click", "press", "tap", "submit", "type", "fill"}:
        described = " ".join(
            s.value
            for s in call.strings
            if s.key.lower() in ("element", "selector", "text", "name", "label", "button", "description")
        )
        if (words & {"click", "press", "tap", "submit"} and _CONSEQUENTIAL.search(described)) or call.flag("submit"):
            yield Finding(_BY_ID["browser.form_submit"], f"{call.tool} on {described[:60]!r}", "arguments")


def _typing(call: CallView) -> Iterator[Finding]:
    if not call.tool_words & {"type", "fill", "form", "input", "keyboard", "press", "set", "select"}:
        return
    fields = call.arguments.get("fields") if hasattr(call.arguments, "get") else None
    groups: list[dict[str, object]] = [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []
    if not groups and isinstance(call.arguments, dict):
        groups = [dict(call.arguments)]
    for i, group in enumerate(groups):
        label = " ".join(str(group.get(k, "")) for k in ("name", "element", "label", "selector", "type", "ref"))
        value = next((str(group[k]) for k in ("value", "text", "values") if k in group), "")
        if not value:
            continue
        digits = re.sub(r"[\s-]", "", value)
        where = f"arguments.fields[{i}]" if fields else "arguments"
        if (digits.isdigit() and 13 <= len(digits) <= 19 and _luhn(digits)) or (_CARD_FIELD.search(label)):
            yield Finding(_BY_ID["browser.payment_entry"], f"card details typed into {label.strip()[:40]!r}", where)
        elif _SECRET_FIELD.search(label) or str(group.get("type", "")).lower() == "password":
            yield Finding(_BY_ID["browser.credential_login"], f"secret typed into {label.strip()[:40]!r}", where)
