"""Directives hidden in an encoding: base64, hex or URL-encoded text that decodes to an instruction.

Only decoded text that is mostly printable is judged, and only by the text detectors: a
base64 image or a hash is not a finding. Bounded: at most `MAX_BLOBS` blobs per string.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from urllib.parse import unquote

from bastion.guard.results.detectors import Hit, framing, text_hits
from bastion.guard.results.prefilter import Prefiltered

MAX_BLOBS = 16
MAX_BLOB_CHARS = 64 * 1024
_BASE64 = Prefiltered(
    re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{24,}={0,2}(?![A-Za-z0-9+/=_-])"), r"[A-Za-z0-9+/_-]{24}"
)
_HEX = Prefiltered(
    re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}(?:\s|\\x)?){16,}(?![0-9A-Fa-f])"),
    r"(?:[0-9A-Fa-f]{2}(?:[\t-\r\x{1c}-\x{20}\x{85}\pZ]|\\x)?){16}",  # `\s` as Python reads it: tested
)
_PERCENT = Prefiltered(
    re.compile(r"%[0-9A-Fa-f]{2}(?:[\w.~+-]{0,40}%[0-9A-Fa-f]{2}){5,}[\w.~+-]{0,40}"),
    r"%[0-9A-Fa-f]{2}(?:[\pL\pN_.~+-]{0,40}%[0-9A-Fa-f]{2}){5}",
)


SHORTEST_BLOB = 18
"""The fewest characters any blob pattern matches (six `%XX` escapes; hex needs 32, base64 24)."""


def encoded_directives(text: str) -> Iterator[Hit]:
    """Blobs whose decoded text a text detector flags."""
    if len(text) < SHORTEST_BLOB:
        return
    for detector, pattern, decode in (
        ("encoded.base64", _BASE64, _from_base64),
        ("encoded.hex", _HEX, _from_hex),
        ("encoded.url", _PERCENT, _from_percent),
    ):
        for count, match in enumerate(pattern.finditer(text)):
            if count >= MAX_BLOBS:
                break
            decoded = decode(match[0][:MAX_BLOB_CHARS])
            if decoded is None or not _printable(decoded):
                continue
            hits = list(framing(decoded)) or text_hits(decoded)
            if hits:
                yield detector, match.start(), match.end(), f"{hits[0][0]}: {decoded[:80]}"
                break


def _printable(text: str) -> bool:
    if len(text) < 12:
        return False
    good = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return good / len(text) > 0.95 and sum(c.isalpha() for c in text) / len(text) > 0.5


def _from_base64(blob: str) -> str | None:
    padded = blob + "=" * (-len(blob) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded) if "-" in blob or "_" in blob else base64.b64decode(padded)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _from_hex(blob: str) -> str | None:
    try:
        return bytes.fromhex(re.sub(r"\s|\\x", "", blob)).decode("utf-8")
    except ValueError:
        return None


def _from_percent(blob: str) -> str | None:
    decoded = unquote(blob)
    return decoded if decoded != blob else None
