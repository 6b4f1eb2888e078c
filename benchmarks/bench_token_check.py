"""An agent's bearer token checked after an idle spell: remembered from its last request, or verified afresh.

Run: .venv/bin/python benchmarks/bench_token_check.py [--requests N] [--idle MS]

Every HTTP request's token is checked before its call can be recorded. The token store
remembers the tokens it verified against its current copy of the active ones
(`auth/verified_tokens.py`): an agent's next request skips parsing and hashing its token.
This checks one token through `SqliteTokenStore.verify` after `--idle` ms asleep, as between
an agent's calls: `remembered` as the store does it, `afresh` with the memory emptied first
(verified as before it existed), the two alternating in one process. Printed: the p50 and p90
of each, and p50 remembered / afresh. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.auth.verified_tokens import VerifiedTokens


def measure(requests: int, idle_s: float, folder: Path) -> dict[str, list[float]]:
    store = SqliteTokenStore(folder / "tokens.db")
    try:
        _, token = store.create("bench")
        times: dict[str, list[float]] = {"remembered": [], "afresh": []}
        for index in range(requests * 2):
            kind = "afresh" if index % 2 else "remembered"
            if kind == "afresh":
                store._verified = VerifiedTokens()  # nothing remembered: as before it existed
            time.sleep(idle_s)
            began = time.perf_counter()
            if store.verify(token) is None:
                raise RuntimeError("the token was refused")
            times[kind].append((time.perf_counter() - began) * 1e6)
        return times
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="checks of each kind (default 400)")
    parser.add_argument("--idle", type=float, default=20.0, help="milliseconds asleep before each (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-tokens-") as folder:
        times = measure(args.requests, args.idle / 1e3, Path(folder))
    p50 = {kind: statistics.median(values) for kind, values in times.items()}
    for kind, values in times.items():
        print(f"{kind:10s} p50 {p50[kind]:6.1f} µs   p90 {sorted(values)[int(len(values) * 0.9)]:6.1f} µs")
    print(f"remembered / afresh: p50 x{p50['remembered'] / p50['afresh']:.2f}")


if __name__ == "__main__":
    main()
