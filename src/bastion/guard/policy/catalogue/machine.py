"""Paths as the machine reads them: what the system call receives, not what the JSON string shows.

A C string ends at its first NUL (`/etc/passwd\\x00.txt` opens `/etc/passwd`); servers and HTTP
clients strip surrounding whitespace and control characters (`/etc/passwd\\n`); a control
character inside a name hides the name from a reader. Judging the path with all three undone
fails closed: the judged name is the one the attacker meant.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029\u200b-\u200d\u2060\ufeff]")


def machine_path(value: str) -> str:
    """`value` cut at its first NUL, without surrounding whitespace and without control characters."""
    if "\x00" in value:
        value = value.split("\x00", 1)[0]
    value = value.strip()
    return _CONTROL.sub("", value) if not value.isprintable() or "\u200b" in value else value


def has_control(value: str) -> bool:
    """Whether `value` holds a control (or invisible formatting) character anywhere."""
    return bool(_CONTROL.search(value))
