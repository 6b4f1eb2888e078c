"""Rate-limit counters, kept by the `limits` library in memory or in Redis.

With Redis, every replica using the same URL shares one set of counters. When Redis cannot
be reached, `on_storage_failure` decides: `deny` refuses every rate-limited call until it is
back (fail closed); `local` counts in this process's memory meanwhile. Either way the
failure, and the recovery, are reported once each through `CountersHealth`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from bastion.lazy_import import lazy_module

if TYPE_CHECKING:
    import limits
    from limits import storage as sync_storage
    from limits.aio import storage as aio_storage
    from limits.aio import strategies
else:  # loaded by the first counters (a `limits:` section with a rate), not by every gateway
    sync_storage = lazy_module("limits.storage")
    aio_storage = lazy_module("limits.aio.storage")
    strategies = lazy_module("limits.aio.strategies")

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_PREFIX = "bastion"
INDEX_KEY = f"{KEY_PREFIX}:limits:index"
"""A Redis set of every counter any replica has counted against (for `bastion limits`)."""
RETRY_INTERVAL = 1.0
"""While the storage is failing, it is tried again at most this often (seconds); calls in between use the fallback."""
REDIS_TIMEOUT = 1.0
"""Seconds a Redis command (or connection) may take before it counts as a failure."""


class CountersUnavailable(Exception):
    """The shared storage cannot be reached and `on_storage_failure: deny` says to refuse."""


class CountersHealth(Protocol):
    """Told when the storage starts failing, and when it works again. Must not block or raise."""

    def storage_failing(self, storage: str, error: str) -> None: ...

    def storage_recovered(self, storage: str, down_for: float) -> None: ...


def redacted_url(url: str) -> str:
    """The storage URL without a password, for messages and events."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def limiter_class(strategy: str) -> type[strategies.RateLimiter]:
    """The `limits` rate limiter for a `limits.strategy` name."""
    classes: dict[str, type[strategies.RateLimiter]] = {
        "moving-window": strategies.MovingWindowRateLimiter,
        "sliding-window": strategies.SlidingWindowCounterRateLimiter,
        "fixed-window": strategies.FixedWindowRateLimiter,
    }
    return classes[strategy]


def open_storage(url: str) -> aio_storage.Storage:
    """The `limits` async storage for `memory://` or a Redis URL."""
    if url.startswith("memory"):
        return aio_storage.MemoryStorage()
    from redis.asyncio.retry import Retry  # here: only a Redis storage needs the Redis client
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {
        "implementation": "redispy",
        "key_prefix": KEY_PREFIX,
        "wrap_exceptions": True,
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_TIMEOUT,
        # One quick retry: a pooled connection that Redis closed while restarting fails once.
        "retry": Retry(NoBackoff(), 1),
    }
    storage = sync_storage.storage_from_string(url if url.startswith("async+") else f"async+{url}", **options)
    assert isinstance(storage, aio_storage.Storage)
    return storage


class Counters:
    """Hit and read counters in the configured storage, with its fallback when that fails."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        strategy: str = "moving-window",
        on_failure: Literal["deny", "local"] = "deny",
        health: CountersHealth | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.description = redacted_url(url)
        self.storage = open_storage(url)
        self.limiter = limiter_class(strategy)(self.storage)
        self.on_failure = on_failure
        self.health = health
        self._clock = clock
        self._strategy = limiter_class(strategy)
        self._local: strategies.RateLimiter | None = None
        self.failing_since: float | None = None
        self._last_failure = 0.0
        self._index: set[str] = set()
        self.retry_interval = RETRY_INTERVAL

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    async def hit(self, item: limits.RateLimitItem, *identifiers: str) -> bool:
        """Count one call; False when it would exceed `item`. Raises CountersUnavailable (deny mode)."""
        return await self._run(lambda limiter: limiter.hit(item, *identifiers))

    async def stats(self, item: limits.RateLimitItem, *identifiers: str) -> limits.WindowStats:
        """When the window resets (Unix time) and how many calls remain in it."""
        return await self._run(lambda limiter: limiter.get_window_stats(item, *identifiers))

    async def _run(self, op: Callable[[strategies.RateLimiter], Awaitable[T]]) -> T:
        if self.failing_since is not None and self._clock() - self._last_failure < self.retry_interval:
            return await self._fallback(op)
        try:
            result = await op(self.limiter)
        except Exception as exc:  # any storage failure; the fallback decides (fail closed by default)
            self._failed(exc)
            return await self._fallback(op)
        if self.failing_since is not None:
            self._recovered()
        return result

    async def _fallback(self, op: Callable[[strategies.RateLimiter], Awaitable[T]]) -> T:
        if self.on_failure == "deny":
            raise CountersUnavailable(f"the rate-limit storage {self.description} cannot be reached")
        if self._local is None:
            self._local = self._strategy(aio_storage.MemoryStorage())
        return await op(self._local)

    def _failed(self, exc: Exception) -> None:
        now = self._clock()
        self._last_failure = now
        if self.failing_since is not None:
            return
        self.failing_since = now
        error = f"{type(exc).__name__}: {exc}"
        logger.error("rate-limit storage %s is failing (%s); %s", self.description, error, self._mode_words())
        if self.health is not None:
            self.health.storage_failing(self.description, error)

    def _recovered(self) -> None:
        since, self.failing_since = self.failing_since, None
        down_for = self._clock() - since if since is not None else 0.0
        # Counts kept locally meanwhile are dropped: the shared counters are the truth again.
        self._local = None
        logger.warning("rate-limit storage %s works again after %.1f s", self.description, down_for)
        if self.health is not None:
            self.health.storage_recovered(self.description, down_for)

    def _mode_words(self) -> str:
        if self.on_failure == "deny":
            return "rate-limited calls are refused until it is back (limits.on_storage_failure: deny)"
        return "counting in this process's memory until it is back (limits.on_storage_failure: local)"

    @property
    def shared(self) -> bool:
        return not self.url.startswith("memory")

    async def remember(self, entry: str) -> bool:
        """Add `entry` to the index of counters in use (in Redis, for every replica to see); False if not stored."""
        self._index.add(entry)
        if not self.shared:
            return True
        if self.failing:
            return False
        try:
            await self._redis().sadd(INDEX_KEY, entry)
        except Exception:  # only the usage report misses it; never a reason to refuse a call
            logger.debug("could not index %s", entry, exc_info=True)
            return False
        return True

    async def remembered(self) -> set[str]:
        """Every indexed counter: this process's, and with Redis, every replica's."""
        if not self.shared:
            return set(self._index)
        members = await self._redis().smembers(INDEX_KEY)
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def _redis(self) -> Any:
        return getattr(self.storage, "bridge").get_connection()  # noqa: B009 (only Redis storages have it)

    async def aclose(self) -> None:
        """Close the Redis connections (nothing to do for memory)."""
        bridge = getattr(self.storage, "bridge", None)
        if bridge is not None:
            try:
                await bridge.get_connection().aclose()
            except Exception:
                logger.debug("closing the rate-limit storage failed", exc_info=True)

    async def ping(self) -> bool:
        """The storage answers."""
        try:
            return bool(await self.storage.check())
        except Exception:
            return False
