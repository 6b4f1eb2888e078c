"""The parts of a call's way to its write-ahead record after an idle spell, each beside what it replaced.

Run: .venv/bin/python benchmarks/bench_front_cold.py [--requests N] [--idle MS]

Between an agent's calls the gateway idles, and what runs first on a request runs cold: on a
small virtual machine, several times its back-to-back cost (docs/performance.md). Before a
call's write-ahead record can start, the HTTP front door reads the request's headers, checks
its token and enters the request's cancel scope. Each part is timed here after `--idle` ms
asleep on uvloop, as the gateway does it now and as it did before, the two (and an empty
baseline) alternating request by request in one process:

- `seal`: the audit key's seal of the record committed to `audit_pending` (a lone call's
  write-ahead commit), a prepared HMAC copied / `hmac.digest` (the key set, the digest looked up);

- `headers`: the credential read with `asgi_headers.header` / a Starlette `Headers` built;
- `token`: `SqliteTokenStore.verify` of a token remembered from the last request
  (`VerifiedTokens`) / with the memory emptied first (parsed, hashed, built afresh);
- `cancel scope`: `RequestCancel` / `anyio.CancelScope`, entered and left around an awaited
  empty body.

Printed: each one's p50 less the baseline's (a scope's: less its body alone), and now / before.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import uvloop
from starlette.datastructures import Headers

from bastion.audit.anchor import AuditKey
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.auth.verified_tokens import VerifiedTokens
from bastion.relay.asgi_headers import header
from bastion.relay.request_cancel import RequestCancel

Part = Callable[[], Awaitable[object]]


async def _body() -> None:
    await asyncio.sleep(0)


def parts(store: SqliteTokenStore, token: str) -> dict[str, tuple[Part, Part]]:
    """Each part: (now, before)."""
    raw = [(b"host", b"127.0.0.1:8750"), (b"accept", b"application/json, text/event-stream"),
           (b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode()),
           (b"mcp-session-id", b"0" * 32), (b"mcp-protocol-version", b"2025-11-25"),
           (b"content-length", b"180")]  # fmt: skip
    scope = {"type": "http", "headers": raw}

    async def headers_now() -> object:
        return header(scope, b"authorization")

    async def headers_before() -> object:
        return Headers(scope=scope).get("authorization")

    async def token_now() -> object:
        return store.verify(token)

    async def token_before() -> object:
        store._verified = VerifiedTokens()  # nothing remembered: parsed, hashed and built afresh
        return store.verify(token)

    async def scope_now() -> object:
        with RequestCancel():
            await _body()
        return None

    async def scope_before() -> object:
        with anyio.CancelScope():
            await _body()
        return None

    key, record = AuditKey(b"k" * 32), b"r" * 600

    async def seal_now() -> object:
        return key.seal(record)

    async def seal_before() -> object:
        return hmac.digest(b"k" * 32, b"bastion-audit-pending-v1\n" + record, "sha256").hex()

    return {
        "seal": (seal_now, seal_before),
        "headers": (headers_now, headers_before),
        "token": (token_now, token_before),
        "cancel scope": (scope_now, scope_before),
    }


async def measure(requests: int, idle_s: float, store: SqliteTokenStore, token: str) -> dict[str, dict[str, float]]:
    async def nothing() -> object:
        return None

    async def body() -> object:
        await _body()
        return None

    runs: list[tuple[str, str, Part]] = [("baseline", "", nothing), ("body", "", body)]
    for name, (now, before) in parts(store, token).items():
        runs += [(name, "now", now), (name, "before", before)]
    times: dict[tuple[str, str], list[float]] = {(name, kind): [] for name, kind, _ in runs}
    for index in range(requests * len(runs)):
        name, kind, part = runs[index % len(runs)]
        await asyncio.sleep(idle_s)
        began = time.perf_counter()
        await part()
        times[name, kind].append((time.perf_counter() - began) * 1e6)
    base = statistics.median(times.pop(("baseline", "")))
    body_alone = statistics.median(times.pop(("body", "")))  # a scope's figures are less its body's
    p50: dict[str, dict[str, float]] = {}
    for (name, kind), values in times.items():
        p50.setdefault(name, {})[kind] = statistics.median(values) - (body_alone if name == "cancel scope" else base)
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind (default 300)")
    parser.add_argument("--idle", type=float, default=20.0, help="milliseconds asleep before each (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-front-cold-") as folder:
        store = SqliteTokenStore(Path(folder) / "tokens.db")
        try:
            _, token = store.create("bench")
            p50 = uvloop.run(measure(args.requests, args.idle / 1e3, store, token))
        finally:
            store.close()
    print(f"p50 µs over the baseline, after {args.idle:g} ms idle:")
    for name, figures in p50.items():
        ratio = figures["now"] / figures["before"] if figures["before"] > 0 else float("nan")
        print(f"  {name:13s} now {figures['now']:6.1f}   before {figures['before']:6.1f}   now / before x{ratio:.2f}")


if __name__ == "__main__":
    main()
