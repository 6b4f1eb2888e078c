r"""A long text is searched by Python's regex engine only when RE2 finds that the pattern could match.

The value and date patterns open with lookbehinds and classes, so Python's engine tries them
at every position: 1 to 5 ms each over a 100 KB argument or result, though such a text rarely
holds an IBAN, a phone number or a file path. RE2 (google-re2, a dependency already) scans a
text in linear time, about 0.1 ms per 100 KB, but has no lookaround and reads `\w`, `\d`, `\s`
and case in its own way. So each pattern has a `superset`: an RE2 pattern that matches
wherever the Python pattern matches (lookarounds and word boundaries dropped, trailing parts
cut, classes widened to Unicode's letters and numbers). A case-sensitive pattern's superset is
searched in the text as it is; a case-insensitive one's, case-insensitively in the text's `fold`
(where every character Python's `re.IGNORECASE` matches to an ASCII letter is that letter).
When the superset finds nothing, the pattern has no match; otherwise the Python pattern runs
as before. Exact, not a heuristic: `tests/unit/guard/results/test_prefilter.py` holds every
superset to its pattern on generated matches.

Short texts (most arguments) are searched directly: RE2 is loaded by the first long text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from bastion.guard.screened import LONG, fold


@cache
def _compiled(superset: str, case_sensitive: bool) -> Any:
    import re2  # type: ignore[import-untyped]  # loaded by the first long text, not by every gateway

    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    options.dot_nl = True
    return re2.compile(superset, options=options)


class Prefiltered:
    """`pattern`, skipped over a long text in which RE2 finds no match of `superset`."""

    def __init__(self, pattern: re.Pattern[str], superset: str) -> None:
        self.pattern = pattern
        self.superset = superset
        """RE2 syntax (`.` matches a newline too): searched in the text, or in its fold when `pattern` ignores case."""
        self.folds = bool(pattern.flags & re.IGNORECASE)

    def may_match(self, text: str) -> bool:
        """False only where `pattern` cannot match `text`."""
        if len(text) < LONG:
            return True
        try:
            if self.folds:
                return _compiled(self.superset, False).search(fold(text)) is not None
            return _compiled(self.superset, True).search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate, which RE2 (UTF-8) cannot read: searched as is
            return True

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """`pattern.finditer(text)`."""
        if not self.may_match(text):
            return iter(())
        return self.pattern.finditer(text)
