"""Scale-out throughput: one gateway replica vs two sharing PostgreSQL and Redis, limits off and on.

Run: .venv/bin/python benchmarks/bench_scale_out.py [--agents 32] [--calls 20] [--rounds 3]
(PostgreSQL at $BASTION_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test;
a schema of its own, dropped afterwards; a private redis-server on a free loopback port.)

One real upstream (benchmarks/servers/echo_server.py over Streamable HTTP) and four real
`bastion up` processes in front of it, all with `database_url` on the same schema (tokens,
approvals, pins and the audit log in PostgreSQL, as a scaled-out deployment runs): replicas
A and B with no limits, and replicas A and B with limits whose counters are in Redis
(per_agent, per_agent_server and global, high enough never to refuse). N concurrent agents,
each with its own token and `mcp.Client`, make sequential calls: through one replica (all
agents on A) or through two (half on A, half on B). The four configurations take turns,
round by round, so drift on a shared machine hits all alike; the median round is printed,
with the rate-limit check's own cost per call (in this process, on the same Redis).

Two replicas on one machine share its cores: on a 2-core host they measure what the shared
stores cost and whether they serialise anything, not the extra capacity a second node gives.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import anyio
import yaml

from bastion.config import load_config
from bastion.stores import open_token_store
from bench_gateway import (
    BASTION,
    Gateway,
    load_average,
    machine_facts,
    start_echo_http,
)
from bench_ratelimit import HIGH, Setup, check_cost, start_redis, throughput_table
from bench_shared_state import postgres_schema


def write_config(folder: Path, upstream: str, database_url: str, limits: dict[str, Any] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "data_dir": str(folder / "data"),
        "database_url": database_url,
        "servers": {"echo": {"url": upstream}},
    }
    if limits is not None:
        config["limits"] = limits
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_replica(config: Path, log: TextIO) -> Gateway:
    """`bastion up`, once it prints its URL (only the first replica on an empty database prints a token)."""
    process = subprocess.Popen(
        [BASTION, "up", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    base_url = None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if m := re.search(r"serving on (http://\S+)", line):
            base_url = m[1]
            break
        if time.monotonic() > deadline:
            break
    if base_url is None:
        process.kill()
        log.flush()
        tail = Path(log.name).read_text(encoding="utf-8").splitlines()[-15:]
        raise RuntimeError("bastion up did not print its URL:\n" + "\n".join(tail))
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    return Gateway(process, base_url, "", config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--calls", type=int, default=20, help="sequential calls per agent per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check-calls", type=int, default=2000)
    parser.add_argument("--log", type=Path, default=None, help="keep the gateways' stderr in this file")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp_name,
        postgres_schema() as database_url,  # dropped after the gateways stop
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        log = stack.enter_context(open(args.log or tmp / "bench.log", "w"))
        upstream = start_echo_http(stack, log)
        redis_url = start_redis(stack, tmp)
        print(machine_facts())
        gateways: dict[str, Gateway] = {}
        for name, limits in (
            ("off-a", None),
            ("off-b", None),
            ("redis-a", {**HIGH, "storage": redis_url}),
            ("redis-b", {**HIGH, "storage": redis_url}),
        ):
            gateway = start_replica(write_config(tmp / name, upstream, database_url, limits), log)
            stack.callback(gateway.stop)
            gateways[name] = gateway
        store = open_token_store(load_config(gateways["off-a"].config))  # the shared database, in-process
        try:
            tokens = [store.create(f"bench-agent-{i}")[1] for i in range(args.agents)]
        finally:
            store.close()
        setups: list[Setup] = [
            ("1 replica, limits off", [gateways["off-a"]], tokens),
            ("2 replicas, limits off", [gateways["off-a"], gateways["off-b"]], tokens),
            ("1 replica, limits on (redis)", [gateways["redis-a"]], tokens),
            ("2 replicas, limits on (redis)", [gateways["redis-a"], gateways["redis-b"]], tokens),
        ]
        table = partial(throughput_table, first_column="configuration", ratio="vs 1 off")
        anyio.run(table, setups, args.calls, args.rounds, backend="asyncio")
        anyio.run(check_cost, redis_url, args.check_calls, backend="asyncio")
    print("\ncalls/s: all agents together; p50: one call as an agent sees it; gw CPU/call: the replicas' processes.")
    print("Every replica: tokens, approvals, pins and audit log in one PostgreSQL schema; limits in one Redis.")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
