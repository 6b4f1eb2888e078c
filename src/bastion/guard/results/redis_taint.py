"""`RedisTaintStore`: the provenance memory in Redis, shared by every replica using the same URL.

It is the Redis `limits.storage` names (the one setting for shared Redis state). Per agent:
a sorted set of the values the agent wrote (scored by when), a sorted set of tainted values
with a hash naming the result each came from, and the same pair per session, plus an index
of the agent's sessions. Every key expires `provenance.window` seconds after its last write;
entries older than the window are ignored when read and dropped when written; each set is cut
to its cap (`max_values`, `max_session_values`, `MAX_SESSIONS_PER_AGENT`) oldest first.

Values, agent names and session ids are stored as SHA-256 digests: Redis holds no e-mail
address or account number in clear, only the results' correlation ids, servers and tools.
Matching is exact either way, as in `MemoryTaintStore`.

Fails closed: a command that fails (Redis down, a timeout of `REDIS_TIMEOUT`) raises, so a call
that must be checked is denied and a result that must be remembered is withheld.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from bastion.guard.results.taint import MAX_SESSIONS_PER_AGENT, Scope, TaintSource, Whose, memories

PREFIX = "bastion:taint"
REDIS_TIMEOUT = 1.0
"""Seconds a Redis command (or connection) may take before it counts as a failure."""

# KEYS: written, then (tainted, sources) of the agent and, when given, of the session, then the
# session index. ARGV: now, window, source, agent cap, session cap, session cap count, session id,
# session key prefix, digests...
_TAINT = """
local now, window, source = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local since, ttl = now - window, math.ceil(window)
local caps = {tonumber(ARGV[4]), tonumber(ARGV[5])}
local pairs_count = (#KEYS == 6) and 2 or 1
local kept = {}
local function drop(z, h, members)
  for i = 1, #members, 1000 do
    local chunk = {unpack(members, i, math.min(i + 999, #members))}
    redis.call('ZREM', z, unpack(chunk))
    redis.call('HDEL', h, unpack(chunk))
  end
end
for i = 9, #ARGV do
  local d = ARGV[i]
  local w = redis.call('ZSCORE', KEYS[1], d)
  if not w or tonumber(w) < since then
    table.insert(kept, i - 8)
    for p = 1, pairs_count do
      local z, h = KEYS[2 * p], KEYS[2 * p + 1]
      local t = redis.call('ZSCORE', z, d)
      if not t or tonumber(t) < since then
        redis.call('ZADD', z, now, d)
        redis.call('HSET', h, d, source)
      end
    end
  end
end
for p = 1, pairs_count do
  local z, h = KEYS[2 * p], KEYS[2 * p + 1]
  drop(z, h, redis.call('ZRANGEBYSCORE', z, '-inf', '(' .. since))
  local excess = redis.call('ZCARD', z) - caps[p]
  if excess > 0 then drop(z, h, redis.call('ZRANGE', z, 0, excess - 1)) end
  redis.call('EXPIRE', z, ttl)
  redis.call('EXPIRE', h, ttl)
end
if pairs_count == 2 then
  local index = KEYS[6]
  redis.call('ZADD', index, now, ARGV[7])
  local excess = redis.call('ZCARD', index) - tonumber(ARGV[6])
  if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', index, 0, excess - 1)) do
      redis.call('DEL', ARGV[8] .. old .. ':tainted', ARGV[8] .. old .. ':sources')
      redis.call('ZREM', index, old)
    end
  end
  redis.call('EXPIRE', index, ttl)
end
return kept
"""

# KEYS: written, then (tainted, sources) pairs in the order checked. ARGV: now, window, cap of
# written, flagged only (0/1), how many digests to look up, those digests, then the digests to
# note as written (after the lookup: a call's own values do not clear it).
_FIND_AND_NOTE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local since, cap, flagged_only, n = now - window, tonumber(ARGV[3]), ARGV[4] == '1', tonumber(ARGV[5])
local found = false
for i = 6, 5 + n do
  for p = 1, (#KEYS - 1) / 2 do
    local t = redis.call('ZSCORE', KEYS[2 * p], ARGV[i])
    if t and tonumber(t) >= since then
      local source = redis.call('HGET', KEYS[2 * p + 1], ARGV[i])
      if source and (not flagged_only or cjson.decode(source).flagged) then
        found = {i - 5, source}
        break
      end
    end
  end
  if found then break end
end
if #ARGV >= 6 + n then
  local written = KEYS[1]
  for i = 6 + n, #ARGV, 1000 do
    local batch = {}
    for j = i, math.min(i + 999, #ARGV) do
      table.insert(batch, now)
      table.insert(batch, ARGV[j])
    end
    redis.call('ZADD', written, unpack(batch))
  end
  redis.call('ZREMRANGEBYSCORE', written, '-inf', '(' .. since)
  local excess = redis.call('ZCARD', written) - cap
  if excess > 0 then redis.call('ZREMRANGEBYRANK', written, 0, excess - 1) end
  redis.call('EXPIRE', written, math.ceil(window))
end
return found
"""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def redis_client_url(url: str) -> str:
    """A `limits.storage` URL as redis-py reads it (`async+redis://` and `redis+unix://` are the limits library's)."""
    url = url.removeprefix("async+")
    if url.startswith("redis+unix://"):
        return "unix://" + url.removeprefix("redis+unix://")
    return url


class RedisTaintStore:
    """A `TaintStore` in Redis (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        window: float,
        max_values: int,
        max_session_values: int,
        max_sessions: int = MAX_SESSIONS_PER_AGENT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from redis.asyncio import Redis  # here: only a shared configuration needs the Redis client

        self.window = window
        self.max_values = max_values
        self.max_session_values = max_session_values
        self.max_sessions = max_sessions
        self.clock = clock
        self.redis: Any = Redis.from_url(
            redis_client_url(url), socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self._taint = self.redis.register_script(_TAINT)
        self._find_and_note = self.redis.register_script(_FIND_AND_NOTE)

    def _agent_key(self, agent: str) -> str:
        return f"{PREFIX}:{{{digest(agent)}}}"  # one hash slot per agent: a script's keys stay together

    def _pair(self, agent: str, session: str | None) -> list[str]:
        base = self._agent_key(agent) if session is None else f"{self._agent_key(agent)}:s:{digest(session)}"
        return [f"{base}:tainted", f"{base}:sources"]

    def note_soon(self, whose: Whose, scope: Scope, values: Callable[[], Iterable[str]]) -> bool:
        """Never: whether Redis remembers a tainted value takes a round trip (the caller notes at once)."""
        return False

    async def note_arguments(self, whose: Whose, values: Iterable[str]) -> None:
        await self.find_and_note(whose, (), values)

    async def taint(self, whose: Whose, values: Iterable[str], source: TaintSource) -> list[str]:
        unique = list(dict.fromkeys(values))
        if not unique:
            return []
        agent_key = self._agent_key(whose.agent)
        keys = [f"{agent_key}:written", *self._pair(whose.agent, None)]
        if whose.session is not None:
            keys += [*self._pair(whose.agent, whose.session), f"{agent_key}:sessions"]
        record = {
            "correlation_id": source.correlation_id,
            "server": source.server,
            "tool": source.tool,
            "why": source.why,
            "at": source.at,
            "flagged": source.flagged,
        }
        args: list[Any] = [self.clock(), self.window, json.dumps(record), self.max_values, self.max_session_values]
        args += [self.max_sessions, digest(whose.session or ""), f"{agent_key}:s:"]
        kept = await self._taint(keys=keys, args=[*args, *(digest(value) for value in unique)])
        return [unique[int(index) - 1] for index in kept]

    async def find(
        self, whose: Whose, values: Iterable[str], *, scope: Scope = "both", flagged_only: bool = False
    ) -> tuple[str, TaintSource] | None:
        return await self.find_and_note(whose, values, (), scope=scope, flagged_only=flagged_only)

    async def find_and_note(
        self,
        whose: Whose,
        values: Iterable[str],
        written: Iterable[str],
        *,
        scope: Scope = "both",
        flagged_only: bool = False,
    ) -> tuple[str, TaintSource] | None:
        ordered = list(values)
        noted = list(dict.fromkeys(digest(value) for value in written))
        if not ordered and not noted:
            return None
        keys = [f"{self._agent_key(whose.agent)}:written"]
        keys += [key for place in memories(whose, scope) for key in self._pair(whose.agent, place)]
        args: list[Any] = [self.clock(), self.window, self.max_values, "1" if flagged_only else "0", len(ordered)]
        found = await self._find_and_note(keys=keys, args=[*args, *(digest(value) for value in ordered), *noted])
        if not found:
            return None
        index, raw = found
        record = json.loads(raw)
        source = TaintSource(
            str(record["correlation_id"]), str(record["server"]), str(record["tool"]), str(record["why"]),
            float(record["at"]),
        )  # fmt: skip
        return ordered[int(index) - 1], source

    async def aclose(self) -> None:
        await self.redis.aclose()
