from __future__ import annotations

import pytest

from bastion.approvals.store import ApprovalStore
from tests.unit.state_backends import FakeClock, StateBackend
from tests.unit.state_backends import backend as backend  # the `backend` fixture: sqlite and postgresql


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(backend: StateBackend) -> ApprovalStore:
    return backend.approvals()
