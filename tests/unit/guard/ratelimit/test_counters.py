"""Counters when their Redis cannot be reached (a real refused connection on a closed port):
fail closed or count locally, and report the failure once."""

from __future__ import annotations

import socket

import limits
import pytest

from bastion.guard.ratelimit.counters import Counters, CountersUnavailable, redacted_url

pytestmark = pytest.mark.anyio

ITEM = limits.parse("2/minute")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


class Health:
    def __init__(self) -> None:
        self.failing: list[tuple[str, str]] = []
        self.recovered: list[str] = []

    def storage_failing(self, storage: str, error: str) -> None:
        self.failing.append((storage, error))

    def storage_recovered(self, storage: str, down_for: float) -> None:
        self.recovered.append(storage)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_deny_fails_closed_and_reports_once() -> None:
    health, clock = Health(), Clock()
    url = f"redis://:secret@127.0.0.1:{closed_port()}/0"
    counters = Counters(url, on_failure="deny", health=health, clock=clock)
    try:
        for _ in range(3):
            with pytest.raises(CountersUnavailable, match="cannot be reached"):
                await counters.hit(ITEM, "agent", "a")
            clock.now += 5  # Redis is tried again each time (past the retry interval), still down
        assert counters.failing
        [(storage, error)] = health.failing
        assert storage == redacted_url(url) == f"redis://***@127.0.0.1:{url.rsplit(':', 1)[1]}"
        assert "secret" not in storage
        assert "111" in error or "onnect" in error
        assert not await counters.ping()
    finally:
        await counters.aclose()


async def test_local_counts_in_memory_meanwhile() -> None:
    health = Health()
    counters = Counters(f"redis://127.0.0.1:{closed_port()}/0", on_failure="local", health=health)
    try:
        assert [await counters.hit(ITEM, "agent", "a") for _ in range(3)] == [True, True, False]
        assert await counters.hit(ITEM, "agent", "b")
        stats = await counters.stats(ITEM, "agent", "a")
        assert stats.remaining == 0
        assert len(health.failing) == 1
        assert health.recovered == []
    finally:
        await counters.aclose()


async def test_memory_counters_never_fail() -> None:
    counters = Counters("memory://", on_failure="deny")
    assert await counters.remember('["per_agent","agent","a"]')
    assert await counters.remembered() == {'["per_agent","agent","a"]'}
    assert [await counters.hit(ITEM, "x") for _ in range(3)] == [True, True, False]
    assert not counters.failing
    assert not counters.shared
    assert await counters.ping()
