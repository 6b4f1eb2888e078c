"""Personal data masked in what the audit log records (`audit.redact_pii`): e-mail addresses,
phone numbers, payment card numbers.

Kept deliberately narrow, so that the log stays useful: a phone number is one written in
international form (`+44 20 7946 0958`, `+1-415-555-0100`) or in the North American form
(`(415) 555-0100`, `415-555-0100`, `415.555.0100`), not any run of digits (dates, ids and
amounts are left alone); a card number is 13 to 19 digits, grouped by spaces or dashes or
not at all, that pass the Luhn check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Literal

PiiKind = Literal["email", "phone", "card"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "phone", "card")

_PATTERNS: dict[PiiKind, str] = {
    "email": r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}",
    "card": r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])",
    "phone": (
        r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"
        r"|(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4})(?![\w])"
    ),
}
_MIN_PHONE_DIGITS = 8


def luhn_valid(digits: str) -> bool:
    """Whether `digits` (digits only) pass the Luhn check that card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0 and digits.strip("0") != ""


def pii_masker(kinds: Iterable[PiiKind]) -> Callable[[str], str] | None:
    """A function masking the personal data of `kinds` in a string as `[REDACTED:<kind>]`;
    None when `kinds` is empty."""
    chosen = [kind for kind in PII_KINDS if kind in set(kinds)]  # cards before phones: both are digits
    if not chosen:
        return None
    pattern = re.compile("|".join(f"(?P<{kind}>{_PATTERNS[kind]})" for kind in chosen))

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        text = match.group(0)
        digits = re.sub(r"\D", "", text)
        if kind == "card" and not luhn_valid(digits):
            return text
        if kind == "phone" and len(digits) < _MIN_PHONE_DIGITS:
            return text
        return f"[REDACTED:{kind}]"

    def mask(text: str) -> str:
        return pattern.sub(replace, text)

    return mask
