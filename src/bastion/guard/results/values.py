"""Values worth remembering from a result, and the same values in a call's arguments.

URLs (and their host), domains, email addresses, IBANs and account numbers, phone numbers,
file paths and names, long tokens (ids, keys), identifiers written with an underscore
(`new_password`, `admin_user`: values an instruction may ask to be set), names of two or more
capitalised words (`Riverside View Hotel`) and quoted texts (`'All messages with Travel Agency'`).
Each value is normalised so that the same value written two ways matches: hosts and emails
case-folded, IBANs and phone numbers without spaces, URLs without a trailing slash.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from bastion.guard.results.prefilter import Prefiltered

_URL = re.compile(r"\b(?:https?|ftp|wss?)://[^\s<>\"'`)\]}]+", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
_DOMAIN = Prefiltered(
    re.compile(r"(?<![@\w.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b(?![\w-])"),
    r"[A-Za-z0-9]\.[A-Za-z]{2}",
)
_IBAN = Prefiltered(re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){10,30}\b"), r"[A-Z]{2}\p{Nd}{2}")
_ACCOUNT = Prefiltered(re.compile(r"(?<![\w.])\d(?:[ -]?\d){7,33}(?![\w.])"), r"\p{Nd}(?:[ -]?\p{Nd}){7}")
_PHONE = Prefiltered(
    re.compile(r"(?<![\w+])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w])"),
    r"\p{Nd}\)?(?:[ .-]?\(?\p{Nd}{2,4}\)?){2}",
)
_PATH = Prefiltered(
    re.compile(r"(?<![\w:/<])(?:~|\.{1,2})?/(?:[\w.@+-]+/)*[\w.@+-]+|\b[\w-]+\.(?:txt|pdf|docx?|xlsx?|csv|json|"
               r"ya?ml|md|html?|zip|tar|gz|png|jpe?g|sh|py|exe|ics|eml)\b", re.IGNORECASE),
    # the lookbehind as the character before (any beyond ASCII will do: Python's `\w` is read there)
    r"(?:^|[^A-Za-z0-9_:/<])(?:~|\.{1,2})?/[\pL\pN_.@+-]"
    r"|[\pL\pN_-]\.(?:txt|pdf|docx?|xlsx?|csv|json|ya?ml|md|html?|zip|tar|gz|png|jpe?g|sh|py|exe|ics|eml)",
)  # fmt: skip
_DATE = re.compile(r"\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4}")
_IDENTIFIER = Prefiltered(
    re.compile(r"(?<![\w./@-])[A-Za-z][A-Za-z0-9]*(?:[_-][A-Za-z0-9]+)*_[A-Za-z0-9_-]{2,}(?![\w@-])"),
    r"[A-Za-z0-9]_[A-Za-z0-9_-]{2}",
)
_NAME = Prefiltered(
    re.compile(r"\b[A-Z][a-z]+(?:[ ](?:(?:of|the|de|la|von)[ ])?[A-Z][a-z]+){1,4}\b"),
    r"[A-Z][a-z]+ (?:(?:of|the|de|la|von) )?[A-Z][a-z]",
)
_QUOTED = re.compile(r"(?<!\w)'([^'\n]{1,120})'(?!\w)|\"([^\"\n]{1,120})\"")
"""An injection quotes the exact value it wants used. Short ones count when they hold a digit
(ids: `'13'`); a short word (`'Alice'`, `'general'`) is as likely the user's own."""
MIN_QUOTED_WORD = 6
_TOKEN = Prefiltered(
    re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9_-]{20,}(?![\w-])"), r"[A-Za-z0-9_-]{20}"
)

_SPACE = re.compile(r"\s")
LINK_KINDS = frozenset({"url", "domain"})
"""Values that name a place on the network: passing one to any tool can send a request there."""
FILE_SUFFIXES = frozenset({"txt", "pdf", "doc", "docx", "xls", "xlsx", "csv", "json", "yaml", "yml", "md", "html",
                           "htm", "zip", "tar", "gz", "png", "jpg", "jpeg", "sh", "py", "js", "ts", "exe", "ics",
                           "eml", "log", "ini", "cfg", "toml", "xml", "rs", "go", "c", "h", "java", "rb"})  # fmt: skip
MAX_VALUE = 512


_DIGIT = re.compile(r"\d")
_ASCII_DIGIT = re.compile(r"[0-9]")


def _has_digit(text: str) -> bool:
    """Whether a character of `text` is a digit (`str.isdigit`: superscripts and other scripts' digits too)."""
    if text.isascii():
        return _ASCII_DIGIT.search(text) is not None
    return any(c.isdigit() for c in text)


_UPPER = re.compile(r"[A-Z]")


def values_in(text: str, *, screen: bool = True) -> Iterator[tuple[str, str]]:
    """(kind, normalised value) for each remembered kind of value in `text`.

    With `screen`, a pattern is not searched when `text` lacks a character every match of it
    holds (`://`, `@`, a dot, a digit, ...): most argument strings hold few of them."""
    digit = not screen or _DIGIT.search(text) is not None
    dot = not screen or "." in text
    if not screen or "://" in text:
        for match in _URL.finditer(text):
            url = match[0].rstrip(".,;:!?")
            yield "url", _url(url)
            host = _host(url)
            if host:
                yield "domain", host.removeprefix("www.")
    # An address's domain is not remembered on its own: it is often everyone's (gmail.com).
    if not screen or "@" in text:
        for match in _EMAIL.finditer(text):
            yield "email", match[0].lower()
    if dot:
        for match in _scan(_DOMAIN, text, screen):
            if text[match.start() - 1 : match.start()] == "@":
                continue
            domain = match[0].lower()
            if domain.rsplit(".", 1)[1] not in FILE_SUFFIXES and not domain.replace(".", "").isdigit():
                yield "domain", domain.removeprefix("www.")
    if digit:
        yield from _numbers_in(text, screen)
    if dot or not screen or "/" in text:
        for match in _scan(_PATH, text, screen):
            if len(match[0]) > 3:
                yield "path", match[0]
    if digit:
        for match in _scan(_TOKEN, text, screen):
            yield "token", match[0]
    if not screen or "_" in text:
        for match in _scan(_IDENTIFIER, text, screen):
            if len(match[0]) >= 8:
                yield "identifier", match[0]
    if not screen or _UPPER.search(text) is not None:
        for match in _scan(_NAME, text, screen):
            yield "name", match[0].lower()
    if not screen or "'" in text or '"' in text:
        # each quoted text once (every caller collects the values into a set): a table's rows quote
        # the same column names thousands of times
        for single, double in dict.fromkeys(_QUOTED.findall(text)):
            quoted = (single or double).strip().lower()
            if len(quoted) >= MIN_QUOTED_WORD or _has_digit(quoted):
                yield "quoted", quoted


def _scan(pattern: Prefiltered, text: str, screen: bool) -> Iterator[re.Match[str]]:
    """`pattern`'s matches in `text`; prefiltered by RE2 (a long text) under `screen`."""
    return pattern.finditer(text) if screen else pattern.pattern.finditer(text)


def _numbers_in(text: str, screen: bool = True) -> Iterator[tuple[str, str]]:
    """The accounts (IBANs, long numbers) and phone numbers in `text`."""
    for match in _scan(_IBAN, text, screen):
        yield "account", match[0].replace(" ", "")
    for match in _scan(_ACCOUNT, text, screen):
        if _DATE.fullmatch(match[0]):
            continue
        digits = re.sub(r"[ -]", "", match[0])
        if 8 <= len(digits) <= 34:
            yield "account", digits
    for match in _scan(_PHONE, text, screen):
        if _DATE.fullmatch(match[0]):
            continue
        digits = re.sub(r"\D", "", match[0])
        if 8 <= len(digits) <= 15:
            yield "phone", ("+" if match[0].startswith("+") else "") + digits


def argument_values(arguments: Mapping[str, object]) -> set[str]:
    """Every normalised value in a call's arguments: what `values_in` finds, and each whole string."""
    found: set[str] = set()
    for text in _argument_strings(arguments):
        found.update(value for _, value in values_in(text))
        whole = text.strip()
        if whole and len(whole) <= MAX_VALUE:
            found.update(_whole_forms(whole))
    return found


_last_call: tuple[str, bytes, frozenset[str]] | None = None
"""The call id, its arguments as JSON and their values, of the last `call_argument_values`."""


def call_argument_values(call_id: str, arguments: Mapping[str, object]) -> set[str]:
    """`argument_values(arguments)` of the call `call_id`, found once per call: the provenance
    and requested-action checks both ask. Only the same call with the same arguments (compared
    as their JSON, so a change is seen) gets the values found before."""
    global _last_call
    try:
        text = orjson.dumps(arguments)
    except TypeError:  # not JSON (a test's arguments): found afresh
        return argument_values(arguments)
    last = _last_call
    if last is not None and last[0] == call_id and last[1] == text:
        return set(last[2])
    found = argument_values(arguments)
    _last_call = (call_id, text, frozenset(found))
    return found


def argument_links(arguments: Mapping[str, object]) -> set[str]:
    """The arguments that are a URL or host (one word), normalised as `values_in` does: what a
    tool would open. A link inside prose (a message, a query, a name) is not one."""
    words = (text.strip() for text in _argument_strings(arguments))
    return {value for word in words if word and not _SPACE.search(word) for kind, value in values_in(word)
            if kind in LINK_KINDS}  # fmt: skip


def _whole_forms(text: str) -> Iterator[str]:
    yield text
    lowered = text.lower()
    if lowered != text:
        yield lowered
    compact = re.sub(r"[ -]", "", text)
    if compact != text:
        yield compact


def _argument_strings(value: object) -> list[str]:
    """Every string of `value` (nested), and each integer of eight digits or more as its text, in order."""
    found: list[str] = []
    _collect_strings(value, found)
    return found


def _collect_strings(value: Any, found: list[str]) -> None:
    # Exact JSON types first (what a decoded call holds), the ABCs only for anything else: `isinstance`
    # against `Mapping` is a trip through abc for every value.
    kind = type(value)
    if kind is str:
        found.append(value)
    elif kind is dict:
        for item in value.values():
            if type(item) is str:
                found.append(item)
            else:
                _collect_strings(item, found)
    elif kind is list:
        for item in value:
            _collect_strings(item, found)
    elif kind is bool or kind is float or value is None:
        return
    elif isinstance(value, str):
        found.append(value)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) >= 10_000_000:
            found.append(str(value))  # an account number passed as a number
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_strings(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_strings(item, found)


def _url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    normal = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    return normal.rstrip("/")[:MAX_VALUE]


def _host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def trusted(value: str, allowlist: tuple[str, ...]) -> bool:
    """`value` is on the allowlist: the same value, or a host or address under an allowed domain."""
    lowered = value.lower()
    for allowed in allowlist:
        entry = allowed.strip().lower()
        if not entry:
            continue
        if lowered == entry or lowered.replace(" ", "") == entry.replace(" ", ""):
            return True
        host = _host(lowered) if "://" in lowered else lowered.rsplit("@", 1)[-1]
        if host and (host == entry or host.endswith("." + entry)):
            return True
    return False
