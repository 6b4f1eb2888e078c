"""What Bastion adds to a tool call: latency and throughput, direct path vs through the gateway.

Run: .venv/bin/python benchmarks/bench_gateway.py [--calls N] [--modes legacy,2026-07-28]
                                                   [--durability power,process] [--fronts relay,sdk]
     .venv/bin/python benchmarks/bench_gateway.py --profile DIR   (gateway under cProfile)

One real upstream (benchmarks/servers/echo_server.py, the SDK's `MCPServer` with a
trivial `echo` tool, called at `/servers/echo/mcp` and as `echo__echo` at `/mcp`), one
real SDK client (`mcp.Client`), real `bastion up` / `bastion wrap` processes with audit on
(it always is). Every configuration is measured in the same run, in alternating blocks of
calls, so drift on a shared machine hits all sides alike.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import pstats
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.lowlevel
import httpx2
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

import bastion
from bastion.relay import RELAY_ENV

VENV_BIN = Path(sys.executable).parent
BASTION = str(VENV_BIN / "bastion")
ECHO_SERVER = str(Path(__file__).parent / "servers" / "echo_server.py")
BLOCK = 50
"""Calls per block; configurations of one group take turns block by block."""
WARMUP = 50
AGENTS = 8
TEXT = "hello from the benchmark"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_of(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


@dataclass
class Gateway:
    """A running `bastion up` (the lines below are what tests/e2e/conftest.py does)."""

    process: subprocess.Popen[str]
    base_url: str
    token: str
    config: Path

    def url(self, server: str) -> str:
        return f"{self.base_url}/servers/{server}/mcp"

    def create_token(self, agent: str) -> str:
        done = subprocess.run(
            [BASTION, "token", "create", "--agent", agent, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT, not SIGTERM: uvicorn re-raises a captured SIGTERM after shutting down,
            # which would kill a profiled gateway before cProfile writes its file.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def write_config(folder: Path, servers: dict[str, Any], durability: str = "power") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"listen": "127.0.0.1:0", "data_dir": str(folder / "data"), "servers": servers}
    if durability != "power":  # the default; left out so that Bastions from before the setting run too
        config["audit"] = {"durability": durability}
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_gateway(
    config: Path, log: TextIO, program: list[str] | None = None, env_extra: dict[str, str] | None = None
) -> Gateway:
    """`bastion up --config CONFIG` (or `program up --config CONFIG`), once it prints its URL and token."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    process, base_url, token = start_up([*(program or [BASTION]), "up", "--config", str(config)], env, log)
    return Gateway(process, base_url, token, config)


def start_up(program: list[str], env: dict[str, str], log: TextIO) -> tuple[subprocess.Popen[str], str, str]:
    """Start `program` (a `bastion up`); return it once it printed its URL and first token."""
    process = subprocess.Popen(program, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert process.stdout is not None
    base_url = token = None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if m := re.search(r"serving on (http://\S+)", line):
            base_url = m[1]
        elif re.fullmatch(r"bst_\S+", line.strip()):
            token = line.strip()
            break
        if time.monotonic() > deadline:
            break
    if base_url is None or token is None:
        process.kill()
        raise RuntimeError("bastion up did not print its URL and token; see the log")
    # Keep draining stdout so the gateway never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    return process, base_url, token


# --- clients -------------------------------------------------------------------------------


@asynccontextmanager
async def http_client(url: str, mode: str, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


@asynccontextmanager
async def stdio_mcp_client(args: list[str], mode: str, log: TextIO) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=args[0], args=args[1:])
    async with Client(stdio_client(params, errlog=log), mode=mode) as client:
        yield client


async def call(client: Client, tool: str = "echo") -> None:
    result = await client.call_tool(tool, {"text": TEXT})
    if result.is_error or result.content[0].text != TEXT:  # type: ignore[union-attr]
        raise RuntimeError(f"unexpected echo result: {result}")


# --- latency -------------------------------------------------------------------------------


@dataclass
class Case:
    """One configuration measured for latency: a label, its baseline, a connected client."""

    label: str
    path: str
    baseline: str | None
    connect: Callable[[], Any]
    cpu_pid: Callable[[], int | None] = lambda: None
    tool: str = "echo"
    """The name the client calls (`echo__echo` at the aggregate endpoint `/mcp`)."""
    samples: list[float] = field(default_factory=list)
    cpu: float = 0.0
    client: Any = None


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def measure_group(cases: list[Case], calls: int) -> None:
    """Open every case's client, warm each up, then run them in alternating blocks."""
    async with AsyncExitStack() as stack:
        for case in cases:
            case.client = await stack.enter_async_context(case.connect())
            for _ in range(WARMUP):
                await call(case.client, case.tool)
        done = 0
        while done < calls:
            n = min(BLOCK, calls - done)
            for case in cases:
                client = case.client
                assert client is not None, "measure_group connects every case first"
                pid = case.cpu_pid()
                before = cpu_seconds(pid) if pid else 0.0
                for _ in range(n):
                    began = time.perf_counter()
                    await call(client, case.tool)
                    case.samples.append((time.perf_counter() - began) * 1000.0)
                if pid:
                    case.cpu += cpu_seconds(pid) - before
            done += n


# --- throughput ----------------------------------------------------------------------------


async def throughput(connects: list[Callable[[], Any]], per_agent: int) -> tuple[float, float]:
    """Calls per second of len(connects) clients calling concurrently; and their p50 (ms)."""
    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(c()) for c in connects]
        for client in clients:
            for _ in range(10):
                await call(client)
        start = anyio.Event()

        async def agent(client: Client) -> None:
            await start.wait()
            for _ in range(per_agent):
                began = time.perf_counter()
                await call(client)
                latencies.append((time.perf_counter() - began) * 1000.0)

        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(agent, client)
            await anyio.lowlevel.checkpoint()
            began = time.perf_counter()
            start.set()
        elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, statistics.median(latencies)


# --- the run -------------------------------------------------------------------------------


def machine_facts() -> str:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "")
    cores = len(os.sched_getaffinity(0))
    return (
        f"machine: {cores} cores ({model or platform.processor()}), {platform.system()} {platform.release()}\n"
        f"python {platform.python_version()}, mcp {importlib.metadata.version('mcp')}, "
        f"bastion {bastion.__version__}, uvicorn {importlib.metadata.version('uvicorn')}\n"
        f"load average at start: {load_average()}"
    )


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Bastion:
    """`bastion up` and the `bastion wrap` command for one `audit.durability`."""

    durability: str
    gateway: Gateway
    wrap_cmd: list[str]
    tokens: list[str]
    front: str = "relay"
    """`relay` (Bastion's own relay serves the front door) or `sdk` (the SDK's server stack, the reference)."""

    @property
    def tag(self) -> str:
        return f"[{self.durability}, {self.front}]"

    @property
    def folder(self) -> str:
        return f"{self.durability}-{self.front}"


@dataclass
class Setup:
    """The processes and paths every measurement uses, started before the event loop."""

    log: TextIO
    direct_url: str
    stdio_cmd: list[str]
    bastions: list[Bastion]


def start_echo_http(stack: contextlib.ExitStack, log: TextIO) -> str:
    port = free_port()
    echo_http = subprocess.Popen([sys.executable, ECHO_SERVER, "http", str(port)], stderr=log, stdout=log)
    stack.callback(echo_http.wait, timeout=10)
    stack.callback(echo_http.terminate)
    wait_for_port(port, echo_http)
    return f"http://127.0.0.1:{port}/mcp"


def set_up(stack: contextlib.ExitStack, tmp: Path, log: TextIO, durabilities: list[str], fronts: list[str]) -> Setup:
    direct_url = start_echo_http(stack, log)
    stdio_cmd = [sys.executable, ECHO_SERVER, "stdio"]
    upstreams = {"echo": {"command": stdio_cmd[0], "args": stdio_cmd[1:]}, "echo-http": {"url": direct_url}}
    bastions = []
    for durability in durabilities:
        for front in fronts:
            folder = f"{durability}-{front}"
            env = {RELAY_ENV: "1" if front == "relay" else "0"}
            gateway = start_gateway(write_config(tmp / f"up-{folder}", upstreams, durability), log, env_extra=env)
            stack.callback(gateway.stop)
            wrap_config = write_config(tmp / f"wrap-{folder}", {"echo": upstreams["echo"]}, durability)
            wrap_cmd = [BASTION, "wrap", "--config", str(wrap_config), "--server", "echo"]
            tokens = [gateway.create_token(f"bench-agent-{i}") for i in range(AGENTS)]
            bastions.append(Bastion(durability, gateway, wrap_cmd, tokens, front))
    return Setup(log, direct_url, stdio_cmd, bastions)


def wrap_pid(config_folder: str) -> int | None:
    """The `bastion wrap` process (of the config in `config_folder`) the SDK's stdio client launched."""
    return next(
        (p for p in children_of(os.getpid()) if " wrap " in (line := cmdline(p)) and f"/{config_folder}/" in line),
        None,
    )


def bastion_cases(b: Bastion, mode: str, log: TextIO) -> tuple[list[Case], list[Case]]:
    """The cases through one `bastion up` / `bastion wrap` pair: (stdio upstream, HTTP upstream)."""
    gw, tag = b.gateway, b.tag
    pid = gw.process.pid
    stdio = [
        Case(
            f"wrap {tag}", f"client -stdio-> bastion wrap -stdio-> echo {tag}", "stdio-direct",
            partial(stdio_mcp_client, b.wrap_cmd, mode, log), partial(wrap_pid, f"wrap-{b.folder}"),
        ),
        Case(
            f"up-stdio {tag}", f"client -http-> bastion up -stdio-> echo {tag}", "stdio-direct",
            partial(http_client, gw.url("echo"), mode, gw.token), lambda: pid,
        ),
        Case(
            f"up-/mcp {tag}", f"client -http-> bastion up /mcp -stdio-> echo {tag}", "stdio-direct",
            partial(http_client, f"{gw.base_url}/mcp", mode, gw.token), lambda: pid, "echo__echo",
        ),
    ]  # fmt: skip
    http = [
        Case(
            f"up-http {tag}", f"client -http-> bastion up -http-> echo {tag}", "http-direct",
            partial(http_client, gw.url("echo-http"), mode, gw.token), lambda: pid,
        ),
    ]  # fmt: skip
    return stdio, http


async def latency_table(setup: Setup, modes: list[str], calls: int) -> None:
    log = setup.log
    print(f"{calls} sequential calls per configuration after {WARMUP} warm-up calls; audit on (SQLite)")
    print("[power]/[process]: audit.durability of that Bastion (write-ahead fsynced, or handed to the OS)\n")
    header = f"{'mode':<11} {'path':<62} {'p50':>6} {'p99':>6} {'mean':>6} {'added p50':>10} {'gw CPU/call':>11}"
    print(header + "\n" + "-" * len(header))
    for mode in modes:
        stdio_group = [
            Case("stdio-direct", "client -stdio-> echo", None, partial(stdio_mcp_client, setup.stdio_cmd, mode, log))
        ]
        http_group = [Case("http-direct", "client -http-> echo", None, partial(http_client, setup.direct_url, mode))]
        for b in setup.bastions:
            stdio, http = bastion_cases(b, mode, log)
            stdio_group += stdio
            http_group += http
        for group in (stdio_group, http_group):
            await measure_group(group, calls)
            by_label = {case.label: case for case in group}
            for case in group:
                p50 = statistics.median(case.samples)
                added = ""
                if case.baseline is not None:
                    added = f"{p50 - statistics.median(by_label[case.baseline].samples):+.2f}"
                cpu = f"{case.cpu / len(case.samples) * 1000:.2f} ms" if case.cpu else ""
                row = f"{mode:<11} {case.path:<62} {p50:>6.2f} {pct(case.samples, 0.99):>6.2f}"
                print(f"{row} {statistics.fmean(case.samples):>6.2f} {added:>10} {cpu:>11}", flush=True)
        print()


async def throughput_table(setup: Setup, mode: str, per_agent: int) -> None:
    print(f"throughput: {AGENTS} concurrent agents (own token each) x {per_agent} sequential calls, mode {mode}")
    header = f"{'path':<62} {'calls/s':>8} {'p50 ms':>7} {'vs direct':>9} {'gw CPU/call':>11}"
    print(header + "\n" + "-" * len(header))
    runs: list[tuple[str, list[Callable[[], Any]], int | None]] = [
        ("client -http-> echo", [partial(http_client, setup.direct_url, mode)] * AGENTS, None),
    ]
    for b in setup.bastions:
        gw, tag = b.gateway, b.tag
        runs += [
            (
                f"client -http-> bastion up -http-> echo {tag}",
                [partial(http_client, gw.url("echo-http"), mode, t) for t in b.tokens], gw.process.pid,
            ),
            (
                f"client -http-> bastion up -stdio-> echo {tag}",
                [partial(http_client, gw.url("echo"), mode, t) for t in b.tokens], gw.process.pid,
            ),
        ]  # fmt: skip
    direct_rate = None
    for path, connects, pid in runs:
        before = cpu_seconds(pid) if pid else 0.0
        rate, p50 = await throughput(connects, per_agent)
        cpu = f"{(cpu_seconds(pid) - before) / (AGENTS * (per_agent + 10)) * 1000:.2f} ms" if pid else ""
        direct_rate = direct_rate or rate
        print(f"{path:<62} {rate:>8.0f} {p50:>7.2f} {rate / direct_rate:>8.0%} {cpu:>11}", flush=True)


def benchmark(args: argparse.Namespace, tmp: Path, log: TextIO) -> None:
    modes = args.modes.split(",")
    with contextlib.ExitStack() as stack:
        setup = set_up(stack, tmp, log, args.durability.split(","), args.fronts.split(","))
        print(machine_facts())
        anyio.run(latency_table, setup, modes, args.calls, backend="asyncio")
        anyio.run(throughput_table, setup, modes[0], max(20, args.calls // 4), backend="asyncio")
    print(
        "\np50/p99/mean: ms per call as the client sees it; added p50 = p50 - baseline p50 (the direct row above it)."
    )
    print("gw CPU/call: Bastion process CPU (user+sys, all threads) per call, measured around its own blocks.")
    print(f"load average at end: {load_average()}")


PROFILED_BASTION = """
import cProfile, signal, sys
out = sys.argv.pop(1)
profiler = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, lambda *_: (profiler.disable(), profiler.dump_stats(out)))
from bastion.cli.main import main
main()
"""
"""`bastion up` whose main thread (the event loop) is profiled between SIGUSR1 and SIGUSR2."""


async def profiled_calls(gateway: Gateway, mode: str, calls: int, server: str) -> float:
    """Warm up, then profile `calls` calls through `server`; return seconds per call."""
    async with http_client(gateway.url(server), mode, gateway.token) as client:
        for _ in range(WARMUP):
            await call(client)
        gateway.process.send_signal(signal.SIGUSR1)
        await anyio.sleep(0.2)
        began = time.perf_counter()
        for _ in range(calls):
            await call(client)
        elapsed = time.perf_counter() - began
        gateway.process.send_signal(signal.SIGUSR2)
    return elapsed / calls


def profile(args: argparse.Namespace, tmp: Path, log: TextIO) -> None:
    """Profile the gateway's event loop over the measured calls only (not start-up or warm-up)."""
    out = Path(args.profile).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mode = args.modes.split(",")[0]
    prof = out / f"gateway-{mode}.prof"
    prof.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        server = {"up-http": "echo-http", "up-stdio": "echo"}[args.path]
        if server == "echo-http":
            servers: dict[str, Any] = {server: {"url": start_echo_http(stack, log)}}
        else:
            servers = {server: {"command": sys.executable, "args": [ECHO_SERVER, "stdio"]}}
        program = [sys.executable, "-c", PROFILED_BASTION, str(prof)]
        gateway = start_gateway(write_config(tmp / "up", servers), log, program)
        stack.callback(gateway.stop)
        per_call = anyio.run(profiled_calls, gateway, mode, args.calls, server, backend="asyncio")
        deadline = time.monotonic() + 30
        while not prof.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let dump_stats finish writing
    print(f"bastion up under cProfile (event-loop thread only), {args.calls} calls, mode {mode}, path {args.path}")
    print(f"client-side latency under the profiler: {per_call * 1000:.2f} ms per call; stats in {prof}")
    print_profile(pstats.Stats(str(prof)), args.calls)


def _area(file: str, func: str) -> str:
    """Which software a profiled function belongs to."""
    if file == "~":
        if "epoll" in func:
            return "(idle: waiting in epoll)"
        if "socket" in func or "SimpleQueue" in func or "lock" in func:
            return "C: sockets, queues, locks"
        return "C: other builtins"
    if "/bastion/" in file:
        return "bastion"
    if "site-packages/" in file:
        package = file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        return {"mcp_types": "mcp", "httpcore2": "httpx2", "sse_starlette": "starlette"}.get(package, package)
    return "stdlib (asyncio, json, ...)"


def print_profile(stats: pstats.Stats, calls: int) -> None:
    entries = stats.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    rows = []
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in entries.items():
        area = _area(file, func)
        areas[area] = areas.get(area, 0.0) + tottime
        rows.append((cumtime, tottime, ncalls, f"{_short(file)}:{line}:{func}", area))
    busy = sum(t for a, t in areas.items() if not a.startswith("(idle"))
    print(f"\nself time by area (ms per call; busy total {busy / calls * 1000:.2f} ms, inflated by cProfile)")
    for area, tot in sorted(areas.items(), key=lambda kv: kv[1], reverse=True):
        share = "" if area.startswith("(idle") else f"{tot / busy:6.1%}"
        print(f"  {tot / calls * 1000:7.3f}  {share:>6}  {area}")
    for title, key, count, only in (
        ("Bastion functions by cumulative time", 0, 15, "bastion"),
        ("functions by self time, anywhere", 1, 25, None),
    ):
        print(f"\n{title} (ms per call; n = calls per tool call, coroutine resumptions count)")
        picked = [r for r in sorted(rows, key=lambda r: r[key], reverse=True) if only is None or r[4] == only]
        for cum, tot, n, name, _ in [r for r in picked if "epoll" not in r[3]][:count]:
            print(f"  cum {cum / calls * 1000:7.3f}  self {tot / calls * 1000:7.3f}  n {n / calls:6.1f}  {name}")


def _short(file: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="measured calls per configuration (default 500)")
    parser.add_argument("--modes", default="legacy,2026-07-28", help="client modes, comma-separated")
    parser.add_argument("--durability", default="power,process", help="audit.durability values, comma-separated")
    parser.add_argument(
        "--fronts", default="relay", help="relay (Bastion's own) and/or sdk (the SDK's server stack), comma-separated"
    )
    parser.add_argument("--profile", metavar="DIR", help="profile the gateway (cProfile) instead of benchmarking")
    parser.add_argument(
        "--path", choices=("up-http", "up-stdio"), default="up-http", help="the upstream --profile calls through"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-") as folder:
        tmp = Path(folder)
        with open(tmp / "processes.log", "w") as log:
            began = time.perf_counter()
            (profile if args.profile else benchmark)(args, tmp, log)
            print(f"\n(total {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
