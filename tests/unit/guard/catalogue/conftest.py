from collections.abc import Callable
from typing import Any

import pytest

from bastion.guard.policy.catalogue import ScanContext, scan

ScanIds = Callable[..., set[str]]


def _scan_ids(tool: str, arguments: dict[str, Any], server: str = "", roots: tuple[str, ...] = (),
              domains: tuple[str, ...] = (), read_only: bool | None = None) -> set[str]:  # fmt: skip
    context = ScanContext(allowed_roots=roots, allowed_domains=domains, server=server, read_only_hint=read_only)
    return {f.entry.id for f in scan(tool, arguments, context)}


@pytest.fixture
def scan_ids() -> ScanIds:
    """scan(...) reduced to the set of entry ids found."""
    return _scan_ids
