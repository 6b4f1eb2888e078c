from __future__ import annotations

from pathlib import Path

import pytest

from bastion.approvals.sqlite_store import SqliteApprovalStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SqliteApprovalStore:
    opened = SqliteApprovalStore(tmp_path / "approvals.db", clock=clock, poll_interval=0.01)
    yield opened  # type: ignore[misc]
    opened.close()
