"""What Bastion adds to a call that carries a large text: the guard reads the argument, the result
checks read the answer, the audit log keeps both.

Run: .venv/bin/python benchmarks/bench_large_payload.py [--calls N] [--kb K]
     .venv/bin/python benchmarks/bench_large_payload.py --parts [--kb K]   (in-process, by part)
     .venv/bin/python benchmarks/bench_large_payload.py --mixed [--kb K]   (small calls beside large ones)

One real upstream (benchmarks/servers/echo_server.py, whose `echo` returns its `text`, as text
and as `structuredContent`), one real SDK client, a real `bastion up` on its defaults (audit
`power`, the recommended policy, pinning, result checks). Each payload is sent directly to the
upstream's Streamable HTTP endpoint and through the gateway's `/servers/echo/mcp`, call by call
in turn, so drift on a shared machine hits both alike. Payloads: a short text, a query's rows
written as a Python list of dicts (ids, names, a note: quotes and digits everywhere, one
"sentence"), prose (sentences), an HTML page (a table of links) and markdown (short sections).
Printed per payload: p50 direct, p50 through Bastion, what Bastion adds and the ratio.
`--parts` measures instead, in this process, the CPU of each part for each payload: the guard
(and each of its checks alone) on the argument, the result checks on the answer. Compare two
checkouts by running this file under each one's `PYTHONPATH=.../src` (the gateway it starts
inherits it). `--mixed` measures what a large call does to another agent: the latency of short
calls through the gateway alone, then while a second agent sends large rows one after another.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import yaml

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.model import Principal, ToolCall

sys.path.insert(0, str(Path(__file__).parent))
from bench_gateway import (  # type: ignore[import-not-found]  # the sibling benchmark's
    ECHO_SERVER,
    http_client,
    load_average,
    machine_facts,
    start_echo_http,
    start_gateway,
    write_config,
)


def payloads(kb: int) -> list[tuple[str, str]]:
    size = kb * 1024
    rows, row = [], 0
    while len(str(rows)) < size:
        rows.append({"id": row, "name": f"customer {row}", "city": "Lyon", "note": "paid on time, no open ticket"})
        row += 1
    prose = (
        "The quarterly report shows revenue grew in every region. Customers in Lyon renewed early, "
        "and the support team closed most tickets within a day. "
    ) * (size // 140 + 1)
    line = (
        '<tr><td class="name"><a href="https://shop.example.com/item/{i}">Item {i}</a></td><td>$ {i}.99</td>'
        '<td><span style="color:#333">In stock</span></td></tr>\n'
    )
    page = "<html><head><title>Catalogue</title></head><body><table>\n"
    page += "".join(line.format(i=i) for i in range(size // len(line) + 1))
    markdown = "".join(
        f"## Section {i}\n\nThe service handles request {i} and returns a JSON body with `id`, `status` and "
        f"`items`. See [docs](https://docs.example.com/s{i}).\n\n"
        for i in range(size // 140 + 1)
    )
    return [
        ("short", "hello from the benchmark"),
        (f"rows {kb} KB", str(rows)[:size]),
        (f"prose {kb} KB", prose[:size]),
        (f"html {kb} KB", page[:size]),
        (f"markdown {kb} KB", markdown[:size]),
    ]


async def parts(kb: int, rounds: int) -> None:
    """CPU of the guard (each check alone too) and of the result checks, per payload, in this process."""
    with tempfile.TemporaryDirectory(prefix="bastion-large-parts-") as folder:
        config_file = Path(folder) / "bastion.yaml"
        config = {"listen": "127.0.0.1:0", "data_dir": str(Path(folder) / "data"), "servers": {}}
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        gateway = Gateway(load_config(config_file))
        async with gateway.running():
            pipeline, ids = gateway.pipeline, itertools.count()
            for label, text in payloads(kb):
                result = {"content": [{"type": "text", "text": text}], "structuredContent": {"result": text}}
                spent: dict[str, list[float]] = {}
                for _ in range(rounds + 1):  # the first round warms caches and is dropped
                    call = ToolCall(f"call-{next(ids)}", Principal("local"), "echo", "echo", {"text": text}, DEFINITION)
                    for check in pipeline.checks:
                        began = time.process_time()
                        await check.check_tool_call(call)
                        spent.setdefault(check.name, []).append(time.process_time() - began)
                    pipeline.ended(call)
                    call = ToolCall(f"call-{next(ids)}", Principal("local"), "echo", "echo", {"text": text}, DEFINITION)
                    began = time.process_time()
                    await pipeline.evaluate(call)
                    spent.setdefault("guard", []).append(time.process_time() - began)
                    began = time.process_time()
                    await pipeline.check_result(call, dict(result))
                    spent.setdefault("result checks", []).append(time.process_time() - began)
                    pipeline.ended(call)
                figures = {name: statistics.median(values[1:]) * 1e3 for name, values in spent.items()}
                checks = ", ".join(f"{name} {ms:.2f}" for name, ms in figures.items() if name not in PARTS)
                guard, results = figures["guard"], figures["result checks"]
                print(f"{label:14s} guard {guard:7.2f} ms ({checks}); result checks {results:7.2f} ms")


PARTS = ("guard", "result checks")
DEFINITION = {
    "name": "echo",
    "description": "Return the text unchanged.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


async def measure(direct_url: str, gateway_url: str, token: str, calls: int, kb: int) -> None:
    async with (
        http_client(direct_url, "legacy") as direct,
        http_client(gateway_url, "legacy", token) as bastion,
    ):
        print(f"{'payload':14s} {'direct p50':>11s} {'Bastion p50':>12s} {'added':>9s} {'ratio':>6s}")
        for label, text in payloads(kb):
            times: dict[str, list[float]] = {"direct": [], "bastion": []}
            for round_ in range(calls + 2):
                for name, client in (("direct", direct), ("bastion", bastion)):
                    began = time.perf_counter()
                    result = await client.call_tool("echo", {"text": text})
                    spent = time.perf_counter() - began
                    if result.is_error or result.content[0].text != text:  # type: ignore[union-attr]
                        raise RuntimeError(f"unexpected echo result through {name}: {str(result)[:300]}")
                    if round_ >= 2:  # two warm-up rounds
                        times[name].append(spent)
            d, b = statistics.median(times["direct"]) * 1e3, statistics.median(times["bastion"]) * 1e3
            print(f"{label:14s} {d:9.2f} ms {b:10.2f} ms {b - d:+7.2f} ms {b / d:5.2f}x")


async def mixed(gateway_url: str, tokens: list[str], calls: int, kb: int) -> None:
    """Short calls' latency through the gateway, alone and beside an agent sending large rows."""
    rows = payloads(kb)[1][1]
    async with (
        http_client(gateway_url, "legacy", tokens[0]) as small,
        http_client(gateway_url, "legacy", tokens[1]) as large,
    ):

        async def timed() -> list[float]:
            spent = []
            for _ in range(calls):
                began = time.perf_counter()
                await small.call_tool("echo", {"text": "hello"})
                spent.append(time.perf_counter() - began)
            return spent

        await timed()  # warm-up
        alone = await timed()
        stop = anyio.Event()
        sent = [0]

        async def flood() -> None:
            while not stop.is_set():
                await large.call_tool("echo", {"text": rows})
                sent[0] += 1

        async with anyio.create_task_group() as group:
            group.start_soon(flood)
            began = time.perf_counter()
            beside = await timed()
            window = time.perf_counter() - began
            stop.set()
    for label, spent in (("alone", alone), (f"beside {kb} KB rows", beside)):
        ms = sorted(s * 1e3 for s in spent)
        p50, p90, p99 = (ms[min(len(ms) - 1, int(q * len(ms)))] for q in (0.5, 0.9, 0.99))
        print(f"short calls {label:22s} p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  p99 {p99:6.2f} ms  max {ms[-1]:6.2f} ms")
    print(f"large calls answered meanwhile: {sent[0]} in {window:.1f} s ({sent[0] / window:.1f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="calls per payload and side (default 30)")
    parser.add_argument("--kb", type=int, default=100, help="size of the large payloads in KiB (default 100)")
    parser.add_argument("--parts", action="store_true", help="the CPU of each part in this process, no gateway")
    parser.add_argument("--mixed", action="store_true", help="short calls alone and beside an agent sending large rows")
    args = parser.parse_args()
    print(machine_facts())
    if args.parts:
        anyio.run(parts, args.kb, max(3, args.calls // 6))
        print(f"load average: {load_average()}")
        return
    with tempfile.TemporaryDirectory(prefix="bastion-large-") as folder, contextlib.ExitStack() as stack:
        log = stack.enter_context(open(Path(folder) / "bench.log", "w", encoding="utf-8"))
        direct_url = start_echo_http(stack, log)
        upstream = {"echo": {"command": sys.executable, "args": [ECHO_SERVER, "stdio"]}}
        gateway = start_gateway(write_config(Path(folder) / "up", upstream), log)
        stack.callback(gateway.stop)
        if args.mixed:
            tokens = [gateway.create_token(f"bench-agent-{i}") for i in range(2)]
            anyio.run(mixed, gateway.url("echo"), tokens, args.calls * 10, args.kb)
        else:
            anyio.run(measure, direct_url, gateway.url("echo"), gateway.token, args.calls, args.kb)
    print(f"load average: {load_average()}")


if __name__ == "__main__":
    main()
