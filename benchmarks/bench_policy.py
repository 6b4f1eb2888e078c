"""The policy's cost per call: rules plus the full dangerous-action catalogue.

Run: .venv/bin/python benchmarks/bench_policy.py [N]
Prints median and p99 per call, in microseconds, for typical small calls and for 100 KB
arguments, next to two baselines measured in the same run: the rules alone (catalogue off)
and `json.dumps` of the same arguments (what merely serialising a call costs).
Then every call of the labelled corpus (`../shared/corpus/tool_calls.jsonl` next to the
repository, or `BASTION_CORPUS`): p50 and p99 over all of them, warm (parse caches hit, as for
repeated calls) and cold (caches cleared before each call, as for a call never seen), and the
slowest shape (server/tool and argument keys) of each.
Printed, not asserted. Targets (issues 3 and 14): median under 50 µs for typical calls and on
the corpus; interpreter parsing must not make ordinary calls slower.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from bastion.guard.policy.catalogue import CATALOGUE, fs, net, net_url, sql_parse
from bastion.guard.policy.catalogue.shell_parse import parse_shell
from bastion.guard.policy.config import RuleConfig
from bastion.guard.policy.engine import PolicyEngine
from bastion.guard.policy.rules import Rule, Subject
from bastion.guard.policy.server_context import ServerContext

RULES = [
    {"name": "crm-deletes", "match": {"server": "crm", "tool": "delete_*"}, "action": "ask"},
    {"match": {"role": "support", "tool": "run_query"}, "when": {"arguments.sql": {"sql": ["drop"]}}, "action": "deny"},
    {"match": {"tool": "refund"}, "when": {"arguments.amount": {"gt": 1000}}, "action": "ask"},
    {"match": {"server": "files"}, "when": {"arguments.**": {"outside_roots": True}}, "action": "deny"},
    {"match": {"tool": "send_*"}, "when": {"arguments.to": {"regex": "@example\\.com$"}}, "action": "allow"},
]
CONTEXT = ServerContext(roots=("/srv/app",), domains=("api.github.com", "pypi.org"))

TYPICAL: list[tuple[str, str, dict[str, Any]]] = [
    ("files", "read_file", {"path": "/srv/app/src/main.py"}),
    ("db", "run_query", {"sql": "SELECT id, name FROM customers WHERE id = 42 LIMIT 10"}),
    ("shell", "run_command", {"command": "git log --oneline -n 20", "workdir": "/srv/app"}),
    ("fetch", "fetch", {"url": "https://pypi.org/pypi/requests/json", "max_length": 5000}),
    ("github", "create_issue", {"owner": "acme", "repo": "web", "title": "Bug", "body": "Steps to reproduce: ..."}),
    ("slack", "send_message", {"channel": "C0123", "text": "Deploy finished, all green."}),
    ("shell", "run_command", {"command": ["git", "status", "--short"], "cwd": "/srv/app"}),
    ("shell", "run_command", {"command": "python3 -c 'import json,sys; print(json.load(sys.stdin))'"}),
]
CORPUS = Path(
    os.environ.get("BASTION_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tool_calls.jsonl"
)


def large_arguments() -> dict[str, Any]:
    """About 100 KB: a file write with a long, harmless body, as editors and agents send."""
    line = "def handler(event, context):  # returns the parsed body of the request\n"
    body = line * (100_000 // len(line))
    return {"path": "/srv/app/src/handler.py", "content": body, "mode": "overwrite"}


def clear_caches() -> None:
    """Forget every parse and every judged path, so the next call pays for them (a call never seen before).
    The allowed roots' normal forms (`fs._root_cached`) stay: they are the server's configuration, not the call."""
    parse_shell.cache_clear()
    sql_parse._parse.cache_clear()
    fs._judged.cache_clear()
    fs._normalise_cached.cache_clear()
    net._judged.cache_clear()
    net_url._machine_url_cached.cache_clear()


def samples(fn: Callable[[], object], n: int, before: Callable[[], None] | None = None) -> list[float]:
    """`n` timings of `fn` in µs; `before` runs untimed before each."""
    times = []
    for _ in range(n):
        if before is not None:
            before()
        began = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - began) / 1000)
    return times


def percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))]


def shape(line: Mapping[str, Any]) -> str:
    args = line.get("arguments")
    keys = ",".join(sorted(args)) if isinstance(args, Mapping) else type(args).__name__
    return f"{line.get('id')} {line.get('server')}/{line.get('tool')}({keys})"


def bench_corpus(engine: PolicyEngine, n: int) -> None:
    """p50/p99 per call over the labelled corpus, warm and cold, and the slowest shape of each."""
    if not CORPUS.is_file():
        print(f"corpus: not found at {CORPUS} (set BASTION_CORPUS); skipped")
        return
    lines = [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x.strip()]
    reps = max(3, n // 100)
    print(f"corpus: {len(lines)} calls, {reps} runs each (µs per call)")
    for label, before in (("warm", None), ("cold", clear_caches)):
        pooled: list[float] = []
        worst: tuple[float, str] = (0.0, "")
        for line in lines:
            ctx = line.get("context") or {}
            context = ServerContext(tuple(ctx.get("allowed_roots") or ()), tuple(ctx.get("allowed_domains") or ()))
            who = Subject("bot", frozenset(), line["server"], line["tool"], {})
            args = line["arguments"]
            engine.decide(who, args, context)
            times = samples(partial(engine.decide, who, args, context), reps, before)
            pooled.extend(times)
            worst = max(worst, (statistics.median(times), shape(line)))
        print(
            f"  {label}: p50 {percentile(pooled, 0.5):8.1f}   p99 {percentile(pooled, 0.99):8.1f}   (target p50 <= 50)"
        )
        print(f"  {label}: slowest shape {worst[1]}: median {worst[0]:.1f}")


def measure(fn: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(min(n, 200)):
        fn()
    times = []
    for _ in range(n):
        began = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - began) / 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def compile_rules() -> list[Rule]:
    return [
        Rule.compile(RuleConfig.model_validate(r), i, file=Path("bench.yaml"), line=None, loc=(), prefix="")
        for i, r in enumerate(RULES)
    ]


def no_findings(tool: str, arguments: Mapping[str, Any], context: object) -> list[Any]:
    return []


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    full = PolicyEngine(compile_rules())
    rules_only = PolicyEngine(compile_rules(), scanner=no_findings)
    subject = {(server, tool): Subject("bot", frozenset({"support"}), server, tool, {}) for server, tool, _ in TYPICAL}
    print(f"policy cost per call, {len(CATALOGUE)} catalogue entries, {len(RULES)} rules, N={n} per case (µs)")
    print(f"{'case':34} {'median':>9} {'p99':>9}   {'rules only':>10} {'json.dumps':>10}")
    medians = []
    for server, tool, arguments in TYPICAL:
        who = subject[(server, tool)]
        med, p99 = measure(lambda who=who, a=arguments: full.decide(who, a, CONTEXT), n)
        base, _ = measure(lambda who=who, a=arguments: rules_only.decide(who, a, CONTEXT), n)
        dumps, _ = measure(lambda a=arguments: json.dumps(a), n)
        medians.append(med)
        print(f"{server + '/' + tool:34} {med:9.1f} {p99:9.1f}   {base:10.1f} {dumps:10.1f}")
    print(f"{'typical calls, median of medians':34} {statistics.median(medians):9.1f}   (target < 50)")
    big = large_arguments()
    size = len(json.dumps(big))
    who = Subject("bot", frozenset(), "files", "write_file", {})
    big_n = max(50, n // 20)
    med, p99 = measure(lambda: full.decide(who, big, CONTEXT), big_n)
    base, _ = measure(lambda: rules_only.decide(who, big, CONTEXT), big_n)
    dumps, _ = measure(lambda: json.dumps(big), big_n)
    print(f"{f'files/write_file ({size // 1000} KB)':34} {med:9.1f} {p99:9.1f}   {base:10.1f} {dumps:10.1f}")
    bench_corpus(full, n)


if __name__ == "__main__":
    main()
