from __future__ import annotations

import pytest

from tests.unit.state_backends import FakeClock
from tests.unit.state_backends import backend as backend  # the `backend` fixture: sqlite and postgresql


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
