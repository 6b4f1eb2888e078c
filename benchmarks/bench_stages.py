"""Where the time of one tool call goes inside Bastion: a median per stage, wrap and HTTP.

Run: .venv/bin/python benchmarks/bench_stages.py [--calls N] [--mode legacy] [--durability power] [--interleave K]
                                                 [--fine]

The gateway process (`bastion wrap` or `bastion up`, with the same echo upstream as
bench_gateway.py) is started through a small boot script that wraps a few functions with
time stamps (front door read, write-ahead record, guard pipeline, forward, upstream
answer, completion record, response written). Only the measured calls are stamped. The
stamps cost a few microseconds each; on a busy machine every stage is slower, so compare
runs made at the same time. `--fine` adds the parts of the relay's stages on the paths to a
stdio server (`wrap`, `http-stdio`): the front door's in, the write-ahead record's encoding
and write lock, what follows the sync, the reply's way to the result checks and past them.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
import bench_gateway as bg  # the sibling benchmark: its processes and clients

BOOT = r"""
import functools, json, signal, sys, time
out = sys.argv.pop(1)
FINE = sys.argv.pop(1) == "fine"
EVENTS, ON = [], [False]
def mark(label):
    if ON[0]:
        EVENTS.append((label, time.perf_counter_ns()))
def dump(*_):
    ON[0] = False
    with open(out, "w") as f:
        json.dump(EVENTS, f)
signal.signal(signal.SIGUSR1, lambda *_: ON.__setitem__(0, True))
signal.signal(signal.SIGUSR2, dump)

def stamp(owner, name, label):
    original = getattr(owner, name)
    @functools.wraps(original)
    async def wrapper(*args, **kwargs):
        tag = label(*args, **kwargs) if callable(label) else label
        if tag is None:
            return await original(*args, **kwargs)
        mark(tag + ">")
        try:
            return await original(*args, **kwargs)
        finally:
            mark(tag + "<")
    setattr(owner, name, wrapper)

import mcp_types
adapter = mcp_types.jsonrpc_message_adapter
class StampedAdapter:
    def __getattr__(self, name):
        return getattr(adapter, name)
    def validate_json(self, data, **kwargs):
        message = adapter.validate_json(data, **kwargs)
        text = data if isinstance(data, str) else bytes(data).decode()
        mark("request parsed" if '"method"' in text else "response parsed")
        return message
mcp_types.jsonrpc_message_adapter = StampedAdapter()

import httpx2
from anyio._backends import _asyncio as anyio_asyncio
stamp(anyio_asyncio.StreamWriterWrapper, "send", "pipe write")
stamp(httpx2.AsyncClient, "send", "http send")

from bastion.auth import authenticator
from bastion.front import http_app
from bastion.proxy import recording
from bastion.upstream import upstream
from bastion.guard import pipeline
stamp(recording.CallRecorder, "_record", lambda s, server, ctx, n: "record" if ctx.method == "tools/call" else None)
stamp(recording.CallRecorder, "_finish", "finish")
stamp(upstream.Upstream, "request", lambda s, method, *a, **k: "upstream" if method == "tools/call" else None)
stamp(pipeline.GuardPipeline, "evaluate", "pipeline")
stamp(authenticator.Authenticator, "authenticate", "auth")
from bastion.audit import writer
stamp(writer.GroupCommitWriter, "record", lambda s, e, durable=True, **k: "durable" if durable else None)

def sstamp(owner, name, label):
    original = getattr(owner, name, None)
    if original is None:  # a Bastion without it
        return
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        mark(label + ">")
        try:
            return original(*args, **kwargs)
        finally:
            mark(label + "<")
    setattr(owner, name, wrapper)
from bastion.audit import sqlite_store
sstamp(sqlite_store.SqliteBackend, "_pend_and_commit", "pend")  # a lone record's fsynced commit (audit_pending)

app_call = http_app.GatewayApp.__call__
async def stamped_app(self, scope, receive, send):
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return await app_call(self, scope, receive, send)
    mark("http in")
    async def stamped_send(message):
        if message["type"] == "http.response.body" and b'"result"' in message.get("body", b""):
            mark("http out>")
            await send(message)
            mark("http out<")
        else:
            await send(message)
    return await app_call(self, scope, receive, stamped_send)
http_app.GatewayApp.__call__ = stamped_app

try:
    from bastion import stdio_pipes
    stamp(stdio_pipes.PipeLineReader, "readline", "stdin")
    stamp(stdio_pipes.PipeTextWriter, "flush", "stdout")
    if hasattr(stdio_pipes.PipeTextWriter, "write_line"):  # the relay's stdio front door
        stamp(stdio_pipes.PipeTextWriter, "write_line", "stdout")
except ImportError:  # a Bastion whose wrap reads stdio through the SDK's worker threads
    from anyio._core import _fileio
    stamp(_fileio.AsyncFile, "readline", "stdin")
    stamp(_fileio.AsyncFile, "flush", "stdout")

try:  # the relay's path (Bastion's own stdio front door and upstream session)
    from bastion.upstream import stdio_wire
    stamp(recording.CallRecorder, "open", lambda s, request: "open" if request.method == "tools/call" else None)
    stamp(stdio_wire.StdioWire, "send", lambda s, payload, **k: "wire" if k.get("method") == "tools/call" else None)
    deliver_line = stdio_wire._deliver_line
    def stamped_deliver_line(inbox, line):
        mark("reply line")
        return deliver_line(inbox, line)
    stdio_wire._deliver_line = stamped_deliver_line
except (ImportError, AttributeError):  # a Bastion whose wrap is the SDK's stack throughout
    pass

try:  # the write-ahead record's sync on io_uring, beside the guard (audit/disk_sync.py)
    from bastion.audit import disk_sync
    sstamp(disk_sync.BackgroundSync, "start", "submit")
    finisher = disk_sync._finisher
    def stamped_finisher(*args):
        finish = finisher(*args)
        def marked(result):
            mark("synced")
            return finish(result)
        return marked
    disk_sync._finisher = stamped_finisher
    stamp(recording.CallRecorder, "on_disk", lambda s, state: "on disk" if state.on_disk is not None else None)
except (ImportError, AttributeError):  # a Bastion that syncs in the commit
    pass

if FINE:  # the parts of the stages above (`--fine`): a few more stamps a call
    from bastion.relay import session_front, http_front
    from bastion.audit import sqlite_store as store_module
    stamp(session_front.SessionFront, "request",
          lambda s, session, request, *a: "request task" if request.method == "tools/call" else None)
    stamp(http_front.RelayHttpEndpoint, "post", "endpoint post")
    stamp(pipeline.GuardPipeline, "check_result", "result checks")
    sstamp(store_module, "encode_event", "encode")  # also the writer's, after the call: the first counts
    sstamp(store_module, "begin_if_free", "lock")

from bastion.cli.main import main
main()
"""

WRAP_STAGES = [
    ("front door in: line read, SDK parse and dispatch", "stdin<", "record>"),
    ("write-ahead record: encode, commit, wake-up", "durable>", "durable<"),
    ("guard: tool definition, pipeline, verdict event", "durable<", "upstream>"),
    ("  of which the guard pipeline", "pipeline>", "pipeline<"),
    ("forward: SDK client session to the pipe", "upstream>", "pipe write<"),
    ("upstream server (echo), both pipes", "pipe write<", "response parsed"),
    ("response: SDK client session to Bastion", "response parsed", "upstream<"),
    ("completion record (encode, queue)", "finish>", "finish<"),
    ("front door out: SDK serialise, write, flush", "finish<", "stdout<"),
    ("everything from request read to response flushed", "stdin<", "stdout<"),
]
RELAY_CALL_STAGES = [
    ("write-ahead record: encode, commit, wake-up", "open>", "open<"),
    ("  of which the commit to audit_pending (rows, seals, fsync)", "pend>", "pend<"),
    ("  of which the sync's submission to io_uring", "submit>", "submit<"),
    ("the sync, submitted to done (beside the guard)", "submit<", "synced"),
    ("the forward waiting for the sync", "on disk>", "on disk<"),
    ("open< to the guard (hub, call state)", "open<", "pipeline>"),
    ("guard pipeline", "pipeline>", "pipeline<"),
    ("verdict to the server's stdin (verdict event, params, id, encode)", "pipeline<", "wire>"),
    ("write to the server's stdin", "wire>", "wire<"),
    ("upstream server (echo), both pipes", "wire<", "reply line"),
    ("reply line parsed, waiting call woken", "reply line", "upstream<"),
    ("result checks, completion record", "upstream<", "finish<"),
]
"""A call on the relay between its front door's in and out (a stdio upstream)."""
FINE_CALL_STAGES = [
    ("  write-ahead: the record encoded (redaction included)", "encode>", "encode<"),
    ("  write-ahead: the log's write lock taken", "lock>", "lock<"),
    ("  open> to the sync's submission done (all of the above)", "open>", "submit<"),
    ("  synced to the server's stdin (when the sync was the longer)", "synced", "wire>"),
    ("  reply line to the call's task woken with it", "reply line", "upstream<"),
    ("  upstream< to the result checks", "upstream<", "result checks>"),
    ("  result checks", "result checks>", "result checks<"),
    ("  result checks< to the completion", "result checks<", "finish<"),
]
"""`--fine`: parts of the stages above (each stamp costs a few microseconds)."""
FINE_WRAP_STAGES = [
    ("  line read to the request's task running", "stdin<", "request task>"),
    ("  request task to the write-ahead record", "request task>", "open>"),
    *FINE_CALL_STAGES,
]
FINE_HTTP_STAGES = [
    ("  authenticated to the endpoint (body read, checked, parsed)", "auth<", "endpoint post>"),
    ("  endpoint to the write-ahead record (session, flow)", "endpoint post>", "open>"),
    *FINE_CALL_STAGES,
]
RELAY_WRAP_STAGES = [
    ("front door in: line read, parsed, task, flow", "stdin<", "open>"),
    *RELAY_CALL_STAGES,
    ("front door out: encode, write to stdout", "finish<", "stdout<"),
    ("everything from request read to response written", "stdin<", "stdout<"),
]
HTTP_STDIO_STAGES = [
    ("front door in: authentication", "auth>", "auth<"),
    ("front door in: body read, parsed, flow", "auth<", "open>"),
    *RELAY_CALL_STAGES,
    ("front door out: encode, until the response is written", "finish<", "http out<"),
    ("everything from request received to response written", "http in", "http out<"),
]
HTTP_STAGES = [
    ("front door in: authentication", "auth>", "auth<"),
    ("front door in: SDK session, transport, dispatch", "auth<", "record>"),
    ("write-ahead record: encode, commit, wake-up", "durable>", "durable<"),
    ("guard: tool definition, pipeline, verdict event", "durable<", "upstream>"),
    ("  of which the guard pipeline", "pipeline>", "pipeline<"),
    ("forward: SDK client session to the HTTP request", "upstream>", "http send>"),
    ("upstream server (echo), HTTP both ways", "http send>", "http send<"),
    ("response: SSE read, SDK client session to Bastion", "http send<", "upstream<"),
    ("completion record (encode, queue)", "finish>", "finish<"),
    ("front door out: SDK serialise, until the response event is sent", "finish<", "http out>"),
    ("everything from request received to response sent", "http in", "http out>"),
]


_DIRECT_ECHO = [sys.executable, bg.ECHO_SERVER, "stdio"]


def stage_medians(events: list[tuple[str, int]], first: str, stages: list[tuple[str, str, str]]) -> list[str]:
    calls: list[dict[str, int]] = []
    for label, at in events:
        if label == first:
            calls.append({})
        if calls and label not in calls[-1]:
            calls[-1][label] = at
    calls = calls[5:-5]  # the ends may be cut by the signals
    if stages is WRAP_STAGES and any("open>" in c for c in calls):
        stages = RELAY_WRAP_STAGES  # wrap served by the relay, not the SDK's server stack
    if any("result checks>" in c for c in calls):  # stamped with `--fine`: the relay's paths to a stdio server
        if stages is RELAY_WRAP_STAGES:
            stages = stages + FINE_WRAP_STAGES
        elif stages is HTTP_STDIO_STAGES:
            stages = stages + FINE_HTTP_STAGES
    lines = []
    for name, start, end in stages:
        spans = [(c[end] - c[start]) / 1000 for c in calls if start in c and end in c and c[end] >= c[start]]
        figure = f"{statistics.median(spans):8.0f}" if spans else "       -"
        lines.append(f"  {figure} µs  {name}")
    return lines


async def measure(connect: Callable[[], Any], pid: Callable[[], int], calls: int, interleave: int, log: Any) -> float:
    async with connect() as client, contextlib.AsyncExitStack() as stack:
        # Calls to the echo server run directly, between Bastion's: other processes take the CPUs (and
        # their caches) in between, as when a client calls several servers (bench_peers.sh interleaves).
        others = []
        if interleave:
            others.append(await stack.enter_async_context(bg.stdio_mcp_client(_DIRECT_ECHO, "legacy", log)))
        for _ in range(bg.WARMUP):
            await bg.call(client)
        gateway = pid()
        os.kill(gateway, signal.SIGUSR1)
        await anyio.sleep(0.2)
        samples = []
        for _ in range(calls):
            for other in others:
                for _ in range(interleave):
                    await bg.call(other)
            began = time.perf_counter()
            await bg.call(client)
            samples.append((time.perf_counter() - began) * 1000)
        os.kill(gateway, signal.SIGUSR2)
        await anyio.sleep(0.5)
    return statistics.median(samples)


def run(kind: str, args: argparse.Namespace, tmp: Path, log: Any) -> None:
    out = tmp / f"{kind}.json"
    program = [sys.executable, "-c", BOOT, str(out), "fine" if args.fine else "plain"]
    stdio = [sys.executable, bg.ECHO_SERVER, "stdio"]
    with contextlib.ExitStack() as stack:
        if kind == "wrap":
            servers = {"echo": {"command": stdio[0], "args": stdio[1:]}}
            config = bg.write_config(tmp / "wrap", servers, args.durability)
            command = [*program, "wrap", "--config", str(config), "--server", "echo"]

            def connect() -> Any:
                return bg.stdio_mcp_client(command, args.mode, log)

            def pid() -> int:
                return next(p for p in bg.children_of(os.getpid()) if " wrap " in bg.cmdline(p))

            first, stages = "stdin<", WRAP_STAGES
        else:
            if kind == "http-stdio":
                servers = {"echo": {"command": stdio[0], "args": stdio[1:]}}
            else:
                servers = {"echo-http": {"url": bg.start_echo_http(stack, log)}}
            gateway = bg.start_gateway(bg.write_config(tmp / kind, servers, args.durability), log, program)
            stack.callback(gateway.stop)

            def connect() -> Any:
                return bg.http_client(gateway.url(next(iter(servers))), args.mode, gateway.token)

            def pid() -> int:
                return gateway.process.pid

            first, stages = "http in", HTTP_STDIO_STAGES if kind == "http-stdio" else HTTP_STAGES
        p50 = anyio.run(measure, connect, pid, args.calls, args.interleave, log, backend="asyncio")
    events = [(label, at) for label, at in json.loads(out.read_text())]
    path = {
        "wrap": "client -stdio-> bastion wrap -stdio-> echo",
        "http-stdio": "client -http-> bastion up -stdio-> echo (as in bench_peers.sh)",
        "http": "client -http-> bastion up -http-> echo",
    }[kind]
    between = f", {args.interleave} direct call(s) between" if args.interleave else ""
    print(f"\n{path}  [{args.mode}, audit.durability: {args.durability}{between}]: client p50 {p50:.2f} ms")
    print("\n".join(stage_medians(events, first, stages)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="measured calls per front door (default 300)")
    parser.add_argument("--mode", default="legacy", help="client mode (legacy or 2026-07-28)")
    parser.add_argument("--durability", default="power", help="audit.durability (power or process)")
    parser.add_argument("--fronts", default="wrap,http-stdio,http", help="which paths (wrap, http-stdio, http)")
    parser.add_argument(
        "--interleave", type=int, default=0, help="calls to the echo server run directly before each measured call"
    )
    parser.add_argument("--fine", action="store_true", help="also the parts of the relay's stages (more stamps)")
    args = parser.parse_args()
    print(bg.machine_facts())
    print("median per stage, microseconds; stages overlap nothing, but medians of parts need not add up")
    with tempfile.TemporaryDirectory(prefix="bastion-stages-") as folder, open(Path(folder) / "log", "w") as log:
        for kind in args.fronts.split(","):
            run(kind, args, Path(folder), log)
    print(f"\nload average at end: {bg.load_average()}")


if __name__ == "__main__":
    main()
