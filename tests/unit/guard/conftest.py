"""Every catalogue scan in the guard tests runs twice, pre-screens on and off, and must find the same.

The pre-screens (`catalogue.needles`, the families' early exits) may only skip work that could find
nothing: this fixture turns each test case of the catalogue and policy tests into a differential test
of that promise, on top of what the test itself asserts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bastion.guard.policy.catalogue import Finding, ScanContext, scanner


@pytest.fixture(autouse=True)
def prescreen_differential(monkeypatch: pytest.MonkeyPatch) -> None:
    original = scanner.scan_call

    def both(tool: str, arguments: Mapping[str, Any], context: ScanContext, prescreen: bool) -> list[Finding]:
        screened = original(tool, arguments, context, True)
        full = original(tool, arguments, context, False)
        assert screened == full, f"the pre-screen changed the findings of {tool}({arguments!r:.200})"
        return screened

    monkeypatch.setattr(scanner, "scan_call", both)
