"""The `TaintStore` contract, run on both stores: in memory, and in a real Redis (shared state).

What the agent wrote is trusted; what a result carried is remembered in the agent's memory and
in its session's, each bounded and expiring; `scope` picks the memory a call is checked against.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from bastion.guard.results.redis_taint import RedisTaintStore
from bastion.guard.results.taint import MemoryTaintStore, TaintSource, TaintStore, Whose
from tests.unit.guard.results.redis_url import redis_url

pytestmark = pytest.mark.anyio

FLAGGED = TaintSource("c0ffee", "banking", "read_file", "flagged as injection (framing)", 0.0)
UNTRUSTED = TaintSource("beef", "web", "fetch", "from untrusted server 'web'", 0.0)
ATTACKER, USER = "US133000000121212121212", "GB29NWBK60161331926819"

StoreMaker = Callable[..., TaintStore]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[StoreMaker]:
    opened: list[TaintStore] = []
    url = redis_url() if request.param == "redis" else None

    def maker(**options: object) -> TaintStore:
        options.setdefault("window", 60.0)
        options.setdefault("max_values", 10)
        options.setdefault("max_session_values", 10)
        store: TaintStore = (
            RedisTaintStore(url, **options)  # type: ignore[arg-type]
            if url is not None
            else MemoryTaintStore(**options)  # type: ignore[arg-type]
        )
        opened.append(store)
        return store

    yield maker
    for store in opened:
        await store.aclose()


def agent() -> str:
    """An agent of this test only (the Redis is shared with other tests)."""
    return f"agent-{uuid.uuid4().hex}"


async def test_values_the_agent_wrote_before_are_not_tainted(make: StoreMaker) -> None:
    store, me = make(), agent()
    await store.note_arguments(Whose(me, "s1"), [USER])
    kept = await store.taint(Whose(me, "s2"), [USER, ATTACKER, ATTACKER], FLAGGED)
    assert kept == [ATTACKER], "written in any of the agent's sessions: trusted"
    assert await store.find(Whose(me, "s2"), [USER]) is None
    assert await store.find(Whose(me, "s2"), [USER, ATTACKER]) == (ATTACKER, FLAGGED)
    assert await store.find(Whose(agent(), "s2"), [ATTACKER]) is None, "another agent's memory is its own"


async def test_the_first_result_a_value_appeared_in_is_the_one_named(make: StoreMaker) -> None:
    store, me = make(), agent()
    await store.taint(Whose(me), [ATTACKER], FLAGGED)
    await store.taint(Whose(me), [ATTACKER], UNTRUSTED)
    assert await store.find(Whose(me), [ATTACKER]) == (ATTACKER, FLAGGED)


async def test_flagged_only_skips_values_of_unflagged_untrusted_results(make: StoreMaker) -> None:
    store, me = make(), agent()
    await store.taint(Whose(me), ["page.example"], UNTRUSTED)
    await store.taint(Whose(me), ["evil.example"], FLAGGED)
    assert await store.find(Whose(me), ["page.example"], flagged_only=True) is None
    assert await store.find(Whose(me), ["page.example"]) == ("page.example", UNTRUSTED)
    assert await store.find(Whose(me), ["page.example", "evil.example"], flagged_only=True) == (
        "evil.example",
        FLAGGED,
    )


async def test_values_expire_after_the_window_and_the_oldest_go_first(make: StoreMaker) -> None:
    clock = Clock()
    store, me = make(max_values=2, max_session_values=2, clock=clock), agent()
    for value in ("v1", "v2", "v3"):
        clock.now += 1
        await store.taint(Whose(me, "s"), [value], FLAGGED)
    for scope in ("agent", "session"):
        assert await store.find(Whose(me, "s"), ["v1"], scope=scope) is None, f"{scope}: the oldest goes first"
        assert await store.find(Whose(me, "s"), ["v3"], scope=scope) is not None
    clock.now += 61
    assert await store.find(Whose(me, "s"), ["v2", "v3"]) is None, "expired after the window"
    await store.note_arguments(Whose(me), ["mine"])
    clock.now += 61
    assert await store.taint(Whose(me), ["mine"], FLAGGED) == ["mine"], "what the agent wrote expires too"


@pytest.mark.parametrize(
    ("checked", "scope", "found"),
    [
        (Whose("A", "s1"), "both", True),
        (Whose("A", "s1"), "session", True),
        (Whose("A", "s1"), "agent", True),
        (Whose("A", "s2"), "both", True),  # another session of the agent: the agent's memory has it
        (Whose("A", "s2"), "session", False),  # only that session's memory: it does not
        (Whose("A", "s2"), "agent", True),
        (Whose("A", None), "session", True),  # no session (the 2026 era): the agent's memory
        (Whose("B", "s1"), "both", False),  # the same session id under another agent is another memory
    ],
)
async def test_scope_picks_the_memory_a_call_is_checked_against(
    make: StoreMaker, checked: Whose, scope: str, found: bool
) -> None:
    store, names = make(), {"A": agent(), "B": agent()}
    await store.taint(Whose(names["A"], "s1"), [ATTACKER], FLAGGED)
    result = await store.find(Whose(names[checked.agent], checked.session), [ATTACKER], scope=scope)  # type: ignore[arg-type]
    assert (result is not None) is found


async def test_a_session_memory_is_bounded_apart_from_the_agents(make: StoreMaker) -> None:
    clock = Clock()
    store, me = make(max_values=100, max_session_values=2, clock=clock), agent()
    await store.taint(Whose(me, "quiet"), [ATTACKER], FLAGGED)
    for index in range(5):  # a noisy session pushes out its own values only
        clock.now += 1
        await store.taint(Whose(me, "noisy"), [f"noise{index}"], UNTRUSTED)
    assert await store.find(Whose(me, "quiet"), [ATTACKER], scope="session") == (ATTACKER, FLAGGED)
    assert await store.find(Whose(me, "noisy"), ["noise0"], scope="session") is None
    assert await store.find(Whose(me, "noisy"), ["noise0"], scope="agent") is not None


async def test_the_sessions_of_an_agent_are_bounded(make: StoreMaker) -> None:
    clock = Clock()
    store, me = make(max_sessions=2, clock=clock), agent()
    for session in ("s1", "s2", "s3"):
        clock.now += 1
        await store.taint(Whose(me, session), [f"value-{session}"], FLAGGED)
    assert await store.find(Whose(me, "s1"), ["value-s1"], scope="session") is None, "the oldest session goes"
    assert await store.find(Whose(me, "s3"), ["value-s3"], scope="session") is not None
    assert await store.find(Whose(me, "s1"), ["value-s1"], scope="agent") is not None


async def test_two_stores_on_one_redis_share_the_memory() -> None:
    url = redis_url()
    first = RedisTaintStore(url, window=60, max_values=10, max_session_values=10)
    second = RedisTaintStore(url, window=60, max_values=10, max_session_values=10)
    me = agent()
    try:
        await first.note_arguments(Whose(me, "s"), [USER])
        assert await second.taint(Whose(me, "s"), [USER, ATTACKER], FLAGGED) == [ATTACKER]
        assert await first.find(Whose(me, "s"), [ATTACKER], scope="session") == (ATTACKER, FLAGGED)
    finally:
        await first.aclose()
        await second.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_redis_raises_so_the_checks_fail_closed() -> None:
    store = RedisTaintStore(f"redis://127.0.0.1:{_closed_port()}/0", window=60, max_values=10, max_session_values=10)
    try:
        with pytest.raises(Exception, match=r"(?i)connect"):
            await store.find(Whose("a"), [ATTACKER])
        with pytest.raises(Exception, match=r"(?i)connect"):
            await store.taint(Whose("a"), [ATTACKER], FLAGGED)
    finally:
        await store.aclose()


async def test_redis_holds_digests_not_the_values() -> None:
    store = RedisTaintStore(redis_url(), window=60, max_values=10, max_session_values=10)
    me = agent()
    try:
        await store.note_arguments(Whose(me, "s"), [USER])
        await store.taint(Whose(me, "s"), [ATTACKER], FLAGGED)
        keys = [key async for key in store.redis.scan_iter(match=f"{store._agent_key(me).replace('{', '[{]')}*")]
        assert len(keys) == 6, keys  # written; tainted and sources of the agent and of the session; sessions
        dumped = b"".join([repr(await store.redis.dump(key)).encode() for key in keys])
        for clear in (ATTACKER, USER, me):
            assert clear.encode() not in dumped
        ttls = [await store.redis.ttl(key) for key in keys]
        assert all(0 < ttl <= 60 for ttl in ttls), "every key expires with the window"
    finally:
        await store.aclose()
