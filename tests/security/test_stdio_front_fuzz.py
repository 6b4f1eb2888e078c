"""`bastion wrap`'s stdio front door under fuzz: hostile lines, in both protocol eras.

The relay now reads every line an agent writes on `bastion wrap`'s stdin, whatever era the
first request opens (the handshake, or 2026-07-28's self-contained requests, whose envelope
`relay/envelope.py` checks at the door). A few hundred lines bent every way (`fuzz_cases`:
JSON-RPC messages with fields dropped or mistyped, calls with and without a 2026 envelope,
JSON that is no message, bytes that are no JSON, deep nesting) follow a valid opening. The
properties, as for the HTTP front door (`test_front_door_fuzz.py`):

- every line `bastion wrap` writes back is one JSON-RPC message (nothing else reaches the agent);
- no call reaches the server without its `call.requested` record in the audit log;
- it keeps serving: the era's own well-formed calls, interleaved with the fuzz, are answered
  and reach the server, and the end of stdin ends it cleanly (exit status 0).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import BastionConfig, config_for_wrap
from bastion.gateway.assembly import open_audit
from tests.e2e.conftest import BASTION
from tests.security.fuzz_cases import COUNTING_SERVER, calls, json_values, messages

pytestmark = pytest.mark.e2e

LINES = 120
VALID_EVERY = 10
EXAMPLES = 2
ANSWER_TIMEOUT_S = 60.0
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
}
OPENINGS: dict[str, list[dict[str, Any]]] = {
    "handshake": [
        {
            "jsonrpc": "2.0",
            "id": "open",
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "fuzz", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ],
    "2026-07-28": [{"jsonrpc": "2.0", "id": "open", "method": "server/discover", "params": {"_meta": MODERN_META}}],
}


def _line(value: Any) -> bytes:
    return json.dumps(value).encode()


def _enveloped(message: dict[str, Any], meta: Any) -> dict[str, Any]:
    params = message.get("params")
    return {**message, "params": {**(params if isinstance(params, dict) else {}), "_meta": meta}}


metas = st.one_of(st.just(MODERN_META), json_values, st.dictionaries(st.sampled_from(sorted(MODERN_META)), json_values))
valid_calls = st.builds(
    lambda request_id, text: {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}},
    },
    st.integers(min_value=0, max_value=2**31) | st.text(min_size=1, max_size=12),
    st.text(max_size=40),
)
"""Calls the server takes: the ones that must never reach it unaudited."""
lines = st.one_of(
    valid_calls.map(_line),
    st.builds(_enveloped, valid_calls, st.just(MODERN_META)).map(_line),
    calls.map(_line),
    st.builds(_enveloped, calls, st.just(MODERN_META)).map(_line),
    st.builds(_enveloped, calls, metas).map(_line),
    messages().map(_line),
    st.builds(_enveloped, messages(), metas).map(_line),
    json_values.map(_line),
    st.binary(max_size=200).map(lambda raw: raw.replace(b"\n", b" ").replace(b"\r", b" ")),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)


class Wrap:
    """`bastion wrap` of the counting server, as a raw agent sees it: lines in, lines out."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.out: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stdout: Any) -> None:
        for line in stdout:
            self.out.put(line)
        self.out.put(b"")  # end of output

    def send(self, line: bytes) -> None:
        self.stdin.write(line + b"\n")
        self.stdin.flush()

    def until_answered(self, *request_ids: str) -> list[dict[str, Any]]:
        """Every message written until each of `request_ids` is answered; each must be JSON-RPC."""
        seen: list[dict[str, Any]] = []
        waiting = set(request_ids)
        while waiting:
            line = self.out.get(timeout=ANSWER_TIMEOUT_S)
            assert line, f"bastion wrap ended before answering {sorted(waiting)}; it wrote {seen[-3:]}"
            message = json.loads(line)
            assert isinstance(message, dict), line
            assert message.get("jsonrpc") == "2.0", line
            seen.append(message)
            if "result" in message or "error" in message:
                waiting.discard(message.get("id"))
        return seen


@contextmanager
def wrap(folder: Path, calls_file: Path) -> Iterator[tuple[Wrap, BastionConfig]]:
    command = [sys.executable, str(COUNTING_SERVER), str(calls_file)]
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "BASTION_DATA_DIR": str(home / "data")}
    argv = [BASTION, "wrap", "--no-sandbox", "--name", "counter", "--", *command]
    config = config_for_wrap(command).model_copy(update={"data_dir": (home / "data").resolve()})
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as process:
        try:
            yield Wrap(process), config
        finally:
            if process.poll() is None:
                process.kill()


def calls_audited(config: BastionConfig) -> int:
    async def read() -> int:
        store = open_audit(config)
        await store.open()
        try:
            rows = store.rows(EventQuery(types=("call.requested",)), newest_first=False)
            events = [event_record(decode_row(row)) for row in rows]
        finally:
            await store.close()
        return sum(1 for event in events if event["method"] == "tools/call")

    return anyio.run(read)


def request(era: str, request_id: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A well-formed request of `era` (a 2026-07-28 one carries its envelope)."""
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return _enveloped(message, MODERN_META) if era == "2026-07-28" else message


@pytest.mark.parametrize("era", sorted(OPENINGS))
def test_hostile_lines_get_only_json_rpc_back_no_unaudited_call_and_wrap_keeps_serving(
    tmp_path: Path, era: str
) -> None:
    runs = iter(range(EXAMPLES))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(fuzz=st.lists(lines, min_size=LINES, max_size=LINES))
    def wrap_holds(fuzz: list[bytes]) -> None:
        folder = tmp_path / f"run-{next(runs, 'more')}"
        calls_file = folder / "calls.txt"
        with wrap(folder, calls_file) as (agent, config):
            for message in OPENINGS[era]:
                agent.send(_line(message))
            agent.until_answered("open")
            valid = []
            for number, line in enumerate(fuzz):
                agent.send(line)
                if number % VALID_EVERY == 0:  # the era's own calls, among the fuzz: these must be served
                    valid.append(f"valid-{number}")
                    agent.send(_line(request(era, valid[-1], "tools/call", {"name": "echo", "arguments": {}})))
            agent.send(_line(request(era, "fence", "tools/list", {})))
            answers = agent.until_answered("fence", *valid)  # what came back was JSON-RPC, all of it
            served = [m for m in answers if m.get("id") in valid and "result" in m]
            assert len(served) == len(valid), [m for m in answers if m.get("id") in valid and "error" in m]
            assert received(calls_file) >= len(valid)
            agent.stdin.close()
            assert agent.process.wait(timeout=ANSWER_TIMEOUT_S) == 0
        assert received(calls_file) <= calls_audited(config), "an unaudited call reached the server"

    wrap_holds()


def received(calls_file: Path) -> int:
    return len(calls_file.read_text(encoding="utf-8").splitlines()) if calls_file.exists() else 0
