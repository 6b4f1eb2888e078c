"""The policy's cost per call: rules plus the full dangerous-action catalogue.

Run: .venv/bin/python benchmarks/bench_policy.py [N]
Prints median and p99 per call, in microseconds, for typical small calls and for 100 KB
arguments, next to two baselines measured in the same run: the rules alone (catalogue off)
and `json.dumps` of the same arguments (what merely serialising a call costs).
Printed, not asserted. Target (issue 3): median under 50 µs for typical calls.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bastion.guard.policy.catalogue import CATALOGUE
from bastion.guard.policy.conditions import ServerContext
from bastion.guard.policy.config import RuleConfig
from bastion.guard.policy.engine import PolicyEngine
from bastion.guard.policy.rules import Rule, Subject

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
]


def large_arguments() -> dict[str, Any]:
    """About 100 KB: a file write with a long, harmless body, as editors and agents send."""
    line = "def handler(event, context):  # returns the parsed body of the request\n"
    body = line * (100_000 // len(line))
    return {"path": "/srv/app/src/handler.py", "content": body, "mode": "overwrite"}


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


if __name__ == "__main__":
    main()
