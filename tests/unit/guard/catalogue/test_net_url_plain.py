"""`net_url.machine_url`'s shortcut for plain URLs returns what the full reading (`_written_url`) does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.guard.policy.catalogue import net_url

PARTS = [
    "https:", "http:", "ws:", "ftp:", "file:", "mailto:", "javascript:", "//", "/", "///", "\\\\", "\\", "evil.com",
    "good.com", "@", ":", "8080", "?", "#", "q=1", "%2E", "%", "169.254.169", ".254", "\t", "\n", "\r", " ", "\x00",
    "\x7f", "\x1b", "é", "[::1]", "user:pw", "a", ".", "-", "..",
]  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["https://pypi.org/pypi/requests/json", "https:/evil.com", "https:evil.com", "https:///evil.com", "http://a%2Eb/",
     "https://evil\t.com", "https://evil.com\\@good.com", " https://x.com ", "mailto://x//y", "pypi.org/simple"],
)  # fmt: skip
def test_examples(value: str) -> None:
    assert net_url._machine_url(value) == net_url._written_url(value)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PARTS), max_size=10).map("".join))
def test_generated(value: str) -> None:
    assert net_url._machine_url(value) == net_url._written_url(value)
