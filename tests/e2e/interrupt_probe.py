"""Run by test_interrupt.py in a pytest of its own (its name keeps the suite from collecting it).

A `bastion up` child, and an in-process gateway in the test's event loop, as the e2e tests
have them; the first test says it is ready and waits to be interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.conftest import VENV_BIN, RunningGateway, start_gateway, write_config
from tests.e2e.inprocess import serving

SERVERS = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
READY = "PROBE-READY"
SECOND_TEST = "PROBE-SECOND-TEST-RAN"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bastion_up(tmp_path: Path) -> Iterator[RunningGateway]:
    running = start_gateway(write_config(tmp_path / "child", SERVERS))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.anyio
async def test_waits_to_be_interrupted(bastion_up: RunningGateway, tmp_path: Path) -> None:
    gateway = Gateway(load_config(write_config(tmp_path / "inprocess", SERVERS)))
    with anyio.fail_after(150):
        async with serving(gateway):
            print(f"{READY} {bastion_up.process.pid}", flush=True)
            await anyio.Event().wait()


def test_after_the_interrupt() -> None:
    print(SECOND_TEST, flush=True)
