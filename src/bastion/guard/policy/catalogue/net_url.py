"""A URL as the machine reads it: the text WHATWG parsers and HTTP clients actually send a request to.

Browsers, `fetch`, Node's `URL`, curl and Python's `urlsplit` strip leading and trailing C0 controls
and spaces and drop every tab and newline inside (`https://evil\\t.com` reaches `evil.com`); WHATWG
parsers read a backslash in an http(s)/ws(s) URL as a slash (`https://evil.com\\@good.com` reaches
`evil.com`, while `urlsplit`, urllib3 and curl say `good.com`). `machine_url` returns the text with
tabs, newlines and controls gone, and whether the written form differed from it in a way no honest
URL does (an interior control character, space or backslash before the path, a percent-encoded
host, which WHATWG decodes: `http://169.254.169%2E254/`), which the catalogue
reports as a disguise; `readings` gives every URL some client would request, and each is judged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

_C0_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_OTHER_CONTROLS = re.compile(r"[\x00-\x20\x7f]")
_SPECIAL = re.compile(r"^(?:https?|wss?|ftp)://", re.I)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:")
_DOTTED = re.compile(r"[\w-]+\.[\w.-]*[a-zA-Z]")
_SPECIAL_SLASHES = re.compile(r"^(https?|wss?|ftp):([/\\]*)(?=[^/\\\s])", re.I)


def machine_url(value: str) -> tuple[str, bool]:
    """(the URL a client would request, whether the written form disguised it)."""
    return _machine_url_cached(value) if len(value) <= _CACHED_LENGTH else _machine_url(value)


_CACHED_LENGTH = 2048


_PLAIN = re.compile(r"[^\x00-\x20\x7f\\%]*")
"""No control character, space, backslash or percent sign: nothing `_written_url` would remove or decode."""


def _machine_url(value: str) -> tuple[str, bool]:
    if _PLAIN.fullmatch(value) and ((slashes := _SPECIAL_SLASHES.match(value)) is None or slashes.group(2) == "//"):
        return value, False  # what `_written_url` returns for it, without taking the URL apart
    return _written_url(value)


def _written_url(value: str) -> tuple[str, bool]:
    """`machine_url` in full: every step, whatever the text."""
    stripped = value.strip(_C0_SPACE)
    cleaned = stripped.translate(_TAB_NEWLINE)
    disguised = cleaned != stripped
    slashes = _SPECIAL_SLASHES.match(cleaned)
    # `https:\\evil.com`, `https:/evil.com`, `https:evil.com`: WHATWG reads any slashes (or none) as `//`
    odd = slashes is not None and slashes.group(2) != "//"
    if slashes is not None and odd and (slashes.group(2) or _DOTTED.match(cleaned, slashes.end())):
        cleaned, disguised = slashes.group(1) + "://" + cleaned[slashes.end() :], True
    if not _SCHEME.match(cleaned):
        return cleaned, disguised
    scheme_end = cleaned.find("//")
    if scheme_end < 0:
        return cleaned, disguised
    head, rest = cleaned[: scheme_end + 2], cleaned[scheme_end + 2 :]
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority = rest[:end]
    if _OTHER_CONTROLS.search(authority):
        disguised = True
        authority = _OTHER_CONTROLS.sub("", authority)
    if "\\" in authority and _SPECIAL.match(cleaned):
        disguised = True
    userinfo, at, host = authority.rpartition("@")
    if "%" in host and _SPECIAL.match(cleaned):  # WHATWG percent-decodes a host: `169.254.169%2E254`
        decoded = unquote(host)
        if decoded != host:
            disguised = True
            authority = userinfo + at + decoded
    return head + authority + rest[end:], disguised


_machine_url_cached = lru_cache(maxsize=4096)(_machine_url)
"""A call's URLs are read here twice (which strings are URLs, then what each reaches), and the same URLs recur."""


def readings(url: str) -> tuple[str, ...]:
    """The URLs clients would request for `url` once cleaned: as RFC 3986 reads it, and as WHATWG reads a
    backslash (a slash) when that differs. A host is allowed only if every reading's host is."""
    if "\\" in url and _SPECIAL.match(url):
        head, _, rest = url.partition("//")
        return url, head + "//" + rest.replace("\\", "/")
    return (url,)
