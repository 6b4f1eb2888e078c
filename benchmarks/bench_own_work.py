"""The CPU of Bastion's own work per tool call, without the SDK's protocol stacks.

Run: .venv/bin/python benchmarks/bench_own_work.py [--calls N] [--durability power,process]
     [--observe off,metrics,tracing] [--front none,sdk,relay] [--count]

Per call it runs what the gateway runs outside the SDK: the audit middleware
(`CallRecorder._record`: the write-ahead `call.requested` record, durable, then the
`call.completed` record) around what `ProxyServer._call_tool` does (the default guard
pipeline: server access, tool pinning, policy with the full catalogue; the `call.verdict`
event; the result checks), with a real SQLite audit store. A 2 ms sleep stands for the
upstream, so the audit writer sees calls spaced as in `bench_gateway.py`. Printed: CPU per
call of the whole process (all threads, the audit writer's included), minus the same loop
doing only the sleep. `--observe` compares the observers: `off` (no metrics, no traces),
`metrics` (the default: Prometheus metrics on), `tracing` (metrics, and a span per call with
its children, handed to a span processor that drops them, so the cost is Bastion's and the
OpenTelemetry SDK's, not an exporter's). `--front` adds the front door's server side around
it (`own_work_fronts.py`): `none` (only the audit and guard work above), `sdk` (the POSTed
body through the SDK's server stack, as `BASTION_RELAY=0` serves it) or `relay` (through
Bastion's relay, the default): from the parsed HTTP request to the serialized answer.
`--count` prints, instead of CPU, the Python-level calls (functions and builtins, `sys.setprofile`)
the event loop's thread makes per call: the same for the same tree, so a change's effect shows
without the host's noise.
Compare two checkouts by running this file under each one's
`PYTHONPATH=.../src`, alternately. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import yaml
from opentelemetry.sdk.trace import SpanProcessor

from bastion.config import BastionConfig, load_config
from bastion.gateway.gateway import Gateway
from bastion.model import Principal, ToolCall
from bastion.observability.wiring import GatewayObservability
from bastion.proxy import recording
from own_work_fronts import StubUpstream, front_door  # type: ignore[import-not-found]

TEXT = "hello from the benchmark"
DEFINITION = {
    "name": "echo",
    "description": "Return the text unchanged.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string", "title": "Text"}},
        "required": ["text"],
        "title": "echoArguments",
    },
}
RESULT = {"content": [{"type": "text", "text": TEXT}], "structuredContent": {"result": TEXT}, "isError": False}
UPSTREAM_S = 0.002
ROUNDS = 5
WARMUP = 200


class _Dropped(SpanProcessor):
    """A span processor that keeps nothing (what tracing costs before any export)."""


def observability_for(config: BastionConfig, observe: str) -> GatewayObservability:
    if observe != "tracing":
        return GatewayObservability(config)
    from bastion.observability.config import TracingConfig
    from bastion.observability.tracing import CallTracer, provider_for

    provider = provider_for(TracingConfig(enabled=True), _Dropped())
    assert provider is not None
    return GatewayObservability(config, tracer=CallTracer(provider))


async def measure(durability: str, calls: int, observe: str = "metrics", front: str = "none") -> tuple[float, float]:
    """Median and lowest CPU microseconds per call over ROUNDS rounds of `calls`."""
    with tempfile.TemporaryDirectory(prefix="bastion-own-work-") as folder:
        config_file = Path(folder) / "bastion.yaml"
        config = {
            "listen": "127.0.0.1:0",
            "data_dir": str(Path(folder) / "data"),
            "servers": {},  # the gateway's parts, no server started: the calls name "echo"
            "audit": {"durability": durability},
            "metrics": {"enabled": observe != "off"},
        }
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        loaded = load_config(config_file)
        gateway = Gateway(loaded, observability=observability_for(loaded, observe))
        async with gateway.running():
            if front != "none":
                return await _front_rounds(gateway, calls, front)
            return await _rounds(gateway, calls)


async def _rounds(gateway: Gateway, calls: int) -> tuple[float, float]:
    pipeline = gateway.pipeline
    principal = Principal("local")
    recorder = recording.CallRecorder(gateway.audit, tracer=gateway.observability.tracer)

    async def target_of(ctx: Any, principal: Principal) -> recording.Target:
        return recording.Target("echo", ctx.params.get("name"))

    server: Any = SimpleNamespace(
        principal_of=lambda ctx: principal,
        bind_connection=lambda ctx, principal: None,  # no SDK session to join
        target_of=target_of,
        endpoint=None,
        upstream=SimpleNamespace(name="echo"),
    )
    recorder.middleware(server)

    async def tool_call(ctx: Any) -> Any:  # what ProxyServer._call_tool does around the forward
        state = recording.current_call.get()
        assert state is not None
        call = ToolCall(state.call_id, principal, "echo", "echo", ctx.params["arguments"], DEFINITION)
        try:
            verdict = await pipeline.evaluate(call)
            state.decide(verdict)
            await asyncio.sleep(UPSTREAM_S)
            return await pipeline.check_result(call, dict(RESULT))
        finally:
            pipeline.ended(call)

    async def one() -> None:
        params = {"name": "echo", "arguments": {"text": TEXT}}
        ctx = SimpleNamespace(request_id=1, method="tools/call", params=params, request=None)
        await recorder._record(server, ctx, tool_call)  # type: ignore[arg-type]

    return await _timed(one, calls)


async def _front_rounds(gateway: Gateway, calls: int, front: str) -> tuple[float, float]:
    recorder = recording.CallRecorder(gateway.audit, tracer=gateway.observability.tracer)
    upstream = StubUpstream(DEFINITION, RESULT, UPSTREAM_S)
    ids = itertools.count(1)
    async with front_door(front, gateway.pipeline, recorder, upstream, Principal("local")) as post:

        async def one() -> None:
            body = orjson.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": next(ids),
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": TEXT}},
                }
            )
            sent = await post(body)
            if TEXT.encode() not in b"".join(m.get("body", b"") for m in sent):
                raise RuntimeError(f"unexpected answer: {sent}")

        return await _timed(one, calls)


COUNT_CALLS = False
"""`--count`: Python-level calls (functions and builtins) on the event loop's thread per call, instead of CPU."""


def _counted(events: list[int]) -> Any:
    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            events[0] += 1

    return profile


async def _timed(one: Any, calls: int) -> tuple[float, float]:
    for _ in range(WARMUP):
        await one()
    if COUNT_CALLS:  # deterministic: the same tree gives the same count (less the sleep-only loop's)
        idle, busy = [0], [0]
        sys.setprofile(_counted(idle))
        for _ in range(calls):
            await asyncio.sleep(UPSTREAM_S)
        sys.setprofile(_counted(busy))
        for _ in range(calls):
            await one()
        sys.setprofile(None)
        per_call = (busy[0] - idle[0]) / calls
        return per_call, per_call
    own: list[float] = []
    for _ in range(ROUNDS):
        began = time.process_time()
        for _ in range(calls):
            await asyncio.sleep(UPSTREAM_S)
        idle = time.process_time() - began
        began = time.process_time()
        for _ in range(calls):
            await one()
        own.append((time.process_time() - began - idle) / calls * 1e6)
    return statistics.median(own), min(own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per round (default 600)")
    parser.add_argument("--durability", default="power,process", help="audit.durability values, comma-separated")
    parser.add_argument("--observe", default="metrics", help="off, metrics and/or tracing, comma-separated")
    parser.add_argument("--front", default="none", help="none, sdk and/or relay, comma-separated")
    parser.add_argument("--count", action="store_true", help="count Python calls per call instead of timing CPU")
    args = parser.parse_args()
    global COUNT_CALLS
    COUNT_CALLS = args.count
    for durability in args.durability.split(","):
        for observe in args.observe.split(","):
            for front in args.front.split(","):
                median, lowest = asyncio.run(measure(durability, args.calls, observe, front))
                if args.count:
                    print(f"[{durability}, {observe}, front {front}] Python calls per call: {median:.1f}")
                    continue
                print(
                    f"[{durability}, {observe}, front {front}] Bastion's own CPU per call: "
                    f"median {median:.0f} µs, lowest {lowest:.0f} µs"
                )


if __name__ == "__main__":
    main()
