"""The names tools and prompts have at `/mcp`: `<prefix>__<name>`, valid for every model API.

Model APIs accept tool names of letters, digits, `_` and `-`, at most 64 characters. A
joined name that is already such a name is used as is. Any other (too long, or with a
character such as `.` or `/`) is made valid: other characters become `_`, the name is cut
to 55 characters, and `_` plus the first 8 hex digits of the SHA-256 of the full joined
name are appended. The suffix is stable (the same tool always gets the same name) and
keeps two long names that share their first 55 characters apart.
"""

from __future__ import annotations

import hashlib
import re

from bastion.config_aggregate import EXPOSED_NAME

SEPARATOR = "__"
MAX_LENGTH = 64
_KEPT = MAX_LENGTH - 9
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def exposed_name(prefix: str, name: str) -> str:
    """`<prefix>__<name>`, shortened with a stable hash suffix when it is not a valid model-API name."""
    joined = f"{prefix}{SEPARATOR}{name}"
    if EXPOSED_NAME.fullmatch(joined):
        return joined
    digest = hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_INVALID.sub('_', joined)[:_KEPT]}_{digest}"


def may_be_from(prefix: str, exposed: str) -> bool:
    """Whether `exposed` can be a name `exposed_name(prefix, ...)` made (a cheap filter before a lookup)."""
    head = _INVALID.sub("_", prefix + SEPARATOR)[:_KEPT]
    return exposed.startswith(head)
