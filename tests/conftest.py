"""What every test shares: one Ctrl-C stops the run, whatever task group the test was in.

A KeyboardInterrupt raised inside an anyio task group (an in-process gateway's uvicorn
re-raises the SIGINT it caught once it has stopped serving) reaches pytest wrapped in a
`BaseExceptionGroup`. Pytest stops the session only for a bare KeyboardInterrupt, so the
test was marked failed and the run went on. These hooks unwrap it, in setup, call and
teardown alike; the session's fixtures are then torn down (a `bastion up` child stopped).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest


def _unwrap_interrupt() -> Generator[None, None, None]:
    try:
        yield
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from group
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _unwrap_interrupt())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _unwrap_interrupt())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    return (yield from _unwrap_interrupt())


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Every async test runs on asyncio, the backend Bastion runs on (the anyio plugin's own
    fixture, of the same scope, would add trio wherever it is installed)."""
    return "asyncio"
