"""Idle memory of `bastion up` with one server, and of `bastion wrap`'s process tree.

Run: .venv/bin/python benchmarks/bench_idle_memory.py [--calls N] [--top N] [--no-attribution]
     [--env NAME=VALUE ...]   (e.g. --env PYTHONMALLOC=malloc, to compare allocators)

Measured as `../shared/bench/load.py` does (the issue 17 target): one real `bastion up` on
its defaults with one stdio server (benchmarks/servers/echo_server.py), one real SDK client
session, a few `tools/call echo` to warm up, a pause, then the memory of the gateway
process while idle with the session still open: RSS (VmRSS, what load.py reads), USS and
PSS (/proc/PID/smaps_rollup), and the RSS of its whole tree (the sandboxed server
included). Then the same for `bastion wrap -- echo_server.py stdio` started by an SDK
stdio client: the wrap process, and its tree.

Attribution (a second `bastion up`, same config, started through a launcher that records
allocations with tracemalloc and writes a report on SIGUSR1; its own RSS is inflated by the
tracing and is not the figure above): the modules imported while idle, counted by group,
the Python memory allocated while importing each module (loading its code, running its
body: pydantic models built, tables compiled), summed by group. From the first gateway, its
resident memory by mapping (/proc/PID/smaps): the heap, and each shared library (pydantic_core,
cryptography, uvloop, ...). Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from bench_gateway import start_up  # type: ignore[import-not-found]  # the sibling benchmark's

VENV_BIN = Path(sys.executable).parent
BASTION = os.environ.get("BASTION", str(VENV_BIN / "bastion"))
"""The `bastion` program run (`BASTION=...` for another checkout's, as in `bench_peers.sh`)."""
ECHO_SERVER = str(Path(__file__).parent / "servers" / "echo_server.py")
TEXT = "hello from the benchmark"
IDLE_S = 1.0
"""Pause after the warm-up calls before sampling, as load.py's --idle-s."""

LAUNCHER = r"""
import json, signal, sys, threading, tracemalloc
report, config = sys.argv[1], sys.argv[2]
tracemalloc.start(1)
bootstrap = sys.modules["_frozen_importlib"]
load_unlocked = bootstrap._load_unlocked
own_bytes, stack, names, importers, order = {}, [], [], {}, []

def traced_load(spec):  # each module's own allocations: loading its code and running its body
    importers.setdefault(spec.name, names[-1] if names else "")
    order.append(spec.name)
    names.append(spec.name)
    stack.append(0)
    before = tracemalloc.get_traced_memory()[0]
    try:
        return load_unlocked(spec)
    finally:
        inclusive = tracemalloc.get_traced_memory()[0] - before
        nested = stack.pop()
        names.pop()
        own_bytes[spec.name] = own_bytes.get(spec.name, 0) + inclusive - nested
        if stack:
            stack[-1] += inclusive

bootstrap._load_unlocked = traced_load

def write_report(signum, frame):
    with open(report, "w", encoding="utf-8") as out:
        json.dump({
            "modules": sorted(sys.modules),
            "threads": [t.name for t in threading.enumerate()],
            "traced_bytes": tracemalloc.get_traced_memory()[0],
            "own_bytes": own_bytes,
            "importers": importers,
            "order": order,
        }, out)

signal.signal(signal.SIGUSR1, write_report)
sys.argv = ["bastion", "up", "--config", config]
try:
    from bastion.cli.program import main  # the console script's entry (it pauses the cycle collector)
except ImportError:  # a checkout from before it
    from bastion.cli.main import main
main()
"""


# --- /proc ---------------------------------------------------------------------------------


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            kids.setdefault(int(raw[raw.rfind(")") + 2 :].split()[1]), []).append(int(entry))
    return kids


def tree(pid: int) -> set[int]:
    kids = children_map()
    seen: set[int] = set()
    stack = [pid]
    while stack:
        p = stack.pop()
        if p not in seen:
            seen.add(p)
            stack.extend(kids.get(p, []))
    return seen


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rollup_kb(pid: int) -> dict[str, int]:
    """Rss, Pss, and USS (Private_Clean + Private_Dirty) of one process, in kB."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        if m := re.match(r"(\w+):\s+(\d+) kB", line):
            fields[m[1]] = int(m[2])
    return {
        "rss": fields.get("Rss", 0),
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "anon": fields.get("Anonymous", 0),
    }


def mapped_files_kb(pid: int) -> Counter[str]:
    """Resident kB per mapped file (shared libraries, the interpreter); anonymous memory as `[anon]`."""
    sizes: Counter[str] = Counter()
    current = "[anon]"
    try:
        text = Path(f"/proc/{pid}/smaps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return sizes
    for line in text.splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split(maxsplit=5)
            current = parts[5] if len(parts) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            sizes[current] += int(line.split()[1])
    return sizes


def memory(pid: int) -> dict[str, Any]:
    pids = tree(pid)
    return {
        **rollup_kb(pid),
        "vmrss": status_kb(pid, "VmRSS"),
        "threads": status_kb(pid, "Threads"),
        "tree_rss": sum(status_kb(p, "VmRSS") for p in pids),
        "tree_processes": len(pids),
    }


# --- grouping ------------------------------------------------------------------------------


def module_group(name: str) -> str:
    """`bastion.web.routes` -> `bastion.web`; `sqlglot.dialects.x` -> `sqlglot`."""
    parts = name.split(".")
    if parts[0] == "bastion" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def importer_chain(module: str, importers: dict[str, str]) -> list[str]:
    """`module`, the module whose import loaded it, and so on, up to the first `bastion` module."""
    chain = [module]
    while (parent := importers.get(chain[-1])) and len(chain) < 12:
        chain.append(parent)
        if parent.startswith("bastion.") and not module.startswith("bastion."):
            break
    return chain


def library_group(path: str) -> str:
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0]
    return os.path.basename(path) if path.startswith("/") else path


# --- processes and sessions ----------------------------------------------------------------


def write_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "listen": "127.0.0.1:0",
        "data_dir": str(folder / "data"),
        "servers": {"echo": {"command": sys.executable, "args": [ECHO_SERVER, "stdio"]}},
    }
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def echo(client: Client) -> None:
    result = await client.call_tool("echo", {"text": TEXT})
    if result.is_error or result.content[0].text != TEXT:  # type: ignore[union-attr]
        raise RuntimeError(f"unexpected echo result: {result}")


async def idle_http(url: str, token: str, calls: int, pid: int, then: Any = None) -> dict[str, Any]:
    """One session, `calls` calls, a pause, the gateway's memory (and `then(pid)`, still in the session)."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        first = time.perf_counter()
        await echo(client)
        first_ms = (time.perf_counter() - first) * 1000
        for _ in range(calls - 1):
            await echo(client)
        await anyio.sleep(IDLE_S)
        figures = memory(pid)
        figures["mapped"] = mapped_files_kb(pid)
        figures["first_call_ms"] = first_ms
        if then is not None:
            figures["report"] = await anyio.to_thread.run_sync(then, pid)
        return figures


async def idle_wrap(env: dict[str, str], calls: int, log: TextIO) -> dict[str, Any]:
    params = StdioServerParameters(command=BASTION, args=["wrap", "--", sys.executable, ECHO_SERVER, "stdio"], env=env)
    before = tree(os.getpid())
    async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
        for _ in range(calls):
            await echo(client)
        await anyio.sleep(IDLE_S)
        wraps = [p for p in tree(os.getpid()) - before if "wrap" in cmdline(p) and "bastion" in cmdline(p)]
        wrap = min(wraps)  # the wrap process (its server is a descendant)
        return memory(wrap)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ask_report(path: Path) -> Any:
    def run(pid: int) -> dict[str, Any]:
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size:
                time.sleep(0.2)  # the writer finishes the file
                report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                return report
            time.sleep(0.05)
        raise RuntimeError("the launcher wrote no report")

    return run


# --- printing ------------------------------------------------------------------------------


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def print_memory(label: str, m: dict[str, Any]) -> None:
    print(
        f"{label:<26} RSS {mb(m['vmrss']):>6} MB  USS {mb(m['uss']):>6}  PSS {mb(m['pss']):>6}  "
        f"anon {mb(m['anon']):>6}  threads {m['threads']:>3}  tree RSS {mb(m['tree_rss']):>6} MB "
        f"({m['tree_processes']} processes)"
    )


def print_mappings(mapped: dict[str, int], top: int) -> None:
    libs: Counter[str] = Counter()
    for path, kb in mapped.items():
        libs[library_group(path)] += kb
    print(
        "\nthe gateway's resident memory by mapping (smaps; [heap] and [anon]: Python objects, C allocations, stacks):"
    )
    for name, kb in libs.most_common(top):
        print(f"  {name:<34} {mb(kb):>6} MB")


def print_report(report: dict[str, Any], top: int) -> None:
    modules: list[str] = report["modules"]
    counts = Counter(module_group(m) for m in modules)
    print(f"\nmodules imported while idle: {len(modules)}; threads: {', '.join(report['threads'])}")
    print("  by group (count): " + ", ".join(f"{g} {n}" for g, n in counts.most_common(top)))
    by_group: Counter[str] = Counter()
    for module, size in report["own_bytes"].items():
        by_group[module_group(module)] += size
    imported = sum(by_group.values())
    print(
        f"\nPython memory allocated while importing, by module group (tracemalloc, {mb(imported / 1024)} MB of the "
        f"{mb(report['traced_bytes'] / 1024)} MB traced while idle):"
    )
    for group, size in by_group.most_common(top):
        print(f"  {group:<34} {size / 1024 / 1024:6.2f} MB  ({counts.get(group, 0)} modules)")
    print("\nlargest single modules (own allocations while importing):")
    for module, size in Counter(report["own_bytes"]).most_common(top):
        print(f"  {module:<60} {size / 1024 / 1024:6.2f} MB")
    print("\nhow each of those groups was first reached (the chain of importers, outermost last):")
    for group, _ in by_group.most_common(top):
        first = next((m for m in report["order"] if module_group(m) == group), None)
        if first is not None:
            print(f"  {group:<34} {' <- '.join(importer_chain(first, report['importers']))}")
    watched = ("sqlglot", "jinja2", "bastion.web", "prometheus_client", "opentelemetry", "cryptography", "jwt")
    watched += ("bashlex", "celpy", "bastion.admin", "psycopg", "redis", "uvloop", "pydantic", "mcp")
    flags = ", ".join(f"{w}={'yes' if counts.get(w) else 'no'}" for w in watched)
    print(f"\nwatched groups imported while idle: {flags}")


async def main_async(args: argparse.Namespace) -> None:
    extra = dict(item.split("=", 1) for item in args.env)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    with tempfile.TemporaryDirectory(prefix="bastion-idle-") as tmp:
        root = Path(tmp)
        with (root / "log.txt").open("w", encoding="utf-8") as log:
            await measure(args, env, extra, root, log)


async def measure(
    args: argparse.Namespace, env: dict[str, str], extra: dict[str, str], root: Path, log: TextIO
) -> None:
    """The plain gateway, `bastion wrap`, then (unless skipped) the traced gateway; printed as they come."""
    config = write_config(root / "plain")
    process, base_url, token = start_up([BASTION, "up", "--config", str(config)], env, log)
    try:
        up = await idle_http(f"{base_url}/servers/echo/mcp", token, args.calls, process.pid)
    finally:
        stop(process)
    print(f"extra environment: {extra or 'none'}; {args.calls} calls, then {IDLE_S} s idle")
    print_memory("bastion up (gateway)", up)
    print(f"{'':<26} first call through a fresh gateway: {up['first_call_ms']:.1f} ms")
    wrap_env = {**env, "BASTION_DATA_DIR": str(root / "wrap-data")}
    wrap = await idle_wrap(wrap_env, args.calls, log)
    print_memory("bastion wrap (wrap)", wrap)
    print_mappings(up["mapped"], args.top)
    if args.no_attribution:
        return
    config = write_config(root / "traced")
    report_path = root / "report.json"
    launcher = [sys.executable, "-c", LAUNCHER, str(report_path), str(config)]
    process, base_url, token = start_up(launcher, env, log)
    try:
        url = f"{base_url}/servers/echo/mcp"
        traced = await idle_http(url, token, args.calls, process.pid, ask_report(report_path))
    finally:
        stop(process)
    print(f"\n--- attribution (a second gateway under tracemalloc: RSS {mb(traced['vmrss'])} MB, inflated) ---")
    print_report(traced["report"], args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30, help="calls before the idle sample (load.py warms up with 30)")
    parser.add_argument("--top", type=int, default=25, help="rows per attribution table")
    parser.add_argument("--no-attribution", action="store_true", help="skip the traced second gateway")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway and wrap processes")
    anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()
