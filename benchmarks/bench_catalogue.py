"""Cost of `scan` (the full dangerous-action catalogue) per call.

Run: .venv/bin/python benchmarks/bench_catalogue.py [ROUNDS]
Prints median and p99 per call for typical small calls, with parser caches warm (the same
strings again, as when an agent repeats itself) and cold (every string new), and for calls with
100 KB of arguments. The baseline is `json.dumps` of the same arguments, measured in the same run.
Printed, not asserted.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import string
import sys
import time
from collections.abc import Callable
from typing import Any

from bastion.guard.policy.catalogue import CATALOGUE, ScanContext, scan

ROOTS = ScanContext(allowed_roots=("/srv/app",), allowed_domains=("api.github.com", "pypi.org"), server="s")

TYPICAL: list[tuple[str, dict[str, Any]]] = [
    ("start_process", {"command": "ls -la src/", "timeout_ms": 5000}),
    ("run_command", {"command": "git status --short", "workdir": "/srv/app"}),
    ("read_query", {"query": "SELECT id, email FROM customers WHERE id = 42"}),
    ("query", {"sql": "UPDATE orders SET status = 'shipped' WHERE id = 9"}),
    ("read_text_file", {"path": "/srv/app/src/main.py"}),
    ("write_file", {"path": "/srv/app/docs/notes.md", "content": "# Notes\n\nRelease on Friday.\n"}),
    ("fetch", {"url": "https://api.github.com/repos/acme/app/releases", "max_length": 5000}),
    ("slack_get_channel_history", {"channel_id": "C05GENRL01", "limit": 50}),
    ("create_issue", {"owner": "acme", "repo": "app", "title": "Fix footer", "body": "The footer overlaps."}),
    ("list_customers", {"limit": 10, "email": "maria@example.com"}),
    ("kubectl_get", {"resourceType": "pods", "namespace": "prod"}),
    ("browser_click", {"element": "Next page", "ref": "e12"}),
]


def _fresh(value: Any, salt: int) -> Any:
    """The same call with its strings made new but still well-formed (no parser cache can answer)."""
    if isinstance(value, str):
        if re.search(r"\d", value):
            return re.sub(r"\d+", lambda m: str(int(m.group()) + salt), value)
        if "://" in value:
            return value + ("&" if "?" in value else "?") + f"v={salt}"
        if value.startswith("/"):
            return f"{value}{salt}"
        return f"{value} v{salt}" if " " in value else value
    if isinstance(value, dict):
        return {k: _fresh(v, salt) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v, salt) for v in value]
    return value


def big_calls() -> list[tuple[str, dict[str, Any]]]:
    rnd = random.Random(7)
    words = ["".join(rnd.choices(string.ascii_lowercase, k=rnd.randint(2, 9))) for _ in range(2000)]
    doc = " ".join(rnd.choice(words) for _ in range(17_000))[:100_000]
    rows = [{"id": i, "name": rnd.choice(words), "note": " ".join(rnd.choices(words, k=12))} for i in range(800)]
    return [
        ("write_file", {"path": "/srv/app/docs/big.md", "content": doc}),
        ("insert_rows", {"table": "events", "rows": rows}),
        ("run_command", {"command": "echo " + doc[:60_000] + " > /srv/app/out.txt"}),
    ]


def measure(fn: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t) / 1000)
    return times


def report(label: str, times: list[float], baseline: list[float]) -> None:
    times.sort()
    med, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
    base = statistics.median(baseline)
    print(f"{label:<38} median {med:9.1f} us   p99 {p99:9.1f} us   ({med / base:6.1f}x json.dumps {base:.1f} us)")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    print(f"catalogue: {len(CATALOGUE)} entries; {rounds} rounds")
    for tool, args in TYPICAL:  # first parse of each string (imports, caches)
        scan(tool, args, ROOTS)

    warm: list[float] = []
    base: list[float] = []
    for tool, args in TYPICAL:
        warm += measure(lambda t=tool, a=args: scan(t, a, ROOTS), rounds)
        base += measure(lambda a=args: json.dumps(a), rounds)
    report("typical calls, caches warm", warm, base)

    cold: list[float] = []
    counter = 0
    for _ in range(max(1, rounds // 10)):
        for tool, args in TYPICAL:
            counter += 1
            fresh = _fresh(args, counter)
            cold += measure(lambda t=tool, a=fresh: scan(t, a, ROOTS), 1)
    report("typical calls, every string new", cold, base)

    for tool, args in big_calls():
        size = len(json.dumps(args))
        n = max(5, rounds // 20)
        times = []
        for i in range(n):
            fresh = _fresh(args, i + 1)
            times += measure(lambda t=tool, a=fresh: scan(t, a, ROOTS), 1)
        b = measure(lambda a=args: json.dumps(a), n)
        report(f"{tool} {size // 1000} KB, strings new", times, b)


if __name__ == "__main__":
    main()
