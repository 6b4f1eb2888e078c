"""Regular expressions in rules run on RE2 (google-re2): matching time is linear in the input.

A `regex:` test runs on values the agent chose; Python's backtracking `re` would let a
crafted argument stall the gateway on a pattern such as `(a+)+$`. RE2 has no backreferences
or lookaround, and a pattern that needs them is reported when the config is loaded.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol


class Regex(Protocol):
    def search(self, text: str) -> Any: ...


@cache
def _options() -> Any:
    # RE2 (and the C++ runtime it maps, about 2.5 MB) is loaded by the first `regex:` in a config.
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.log_errors = False  # errors are reported by the config loader, not logged to stderr
    return options


def compile_regex(pattern: str) -> Regex:
    """The compiled pattern; ValueError saying what RE2 cannot read."""
    import re2

    try:
        compiled: Regex = re2.compile(pattern, options=_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(str(detail)) from None
    return compiled
