"""Several processes appending to one audit store at once (gateway replicas, or the gateway and the CLI):
one linear chain that verifies, every event in it exactly once."""

from __future__ import annotations

import select
import subprocess
import sys
from collections import Counter

from bastion.audit.chain import decode_row
from bastion.audit.query import EventQuery
from bastion.audit.search import verify_log
from tests.unit.audit.conftest import Backend

PROCESSES = 3
EVENTS_EACH = 300

# Each writer opens its own store on the same database, waits for "go" on stdin (so they all
# start together), records its events from 16 concurrent tasks, each awaited durably, and says "done".
WRITER = """
import sys, anyio
from pathlib import Path
from bastion.audit import open_audit_store
from bastion.audit.events import ToolChanged

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    store = open_audit_store(Path("."), url=url)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()
    async def task(first):
        for n in range(first, count, 16):
            await store.record(ToolChanged(server=name, tool=f"{name}-{n}", old_digest="a", new_digest="b"))
    async with anyio.create_task_group() as tg:
        for first in range(16):
            tg.start_soon(task, first)
    await store.close()
    print("done", store.commits, flush=True)

anyio.run(main)
"""


def _url(backend: Backend) -> str:
    made = backend.make()
    return made.url if backend.name == "postgresql" else f"sqlite://{made.description}"  # type: ignore[attr-defined]


def read_line(writer: subprocess.Popen[str], timeout: float) -> str:
    """The writer's next line, waiting at most `timeout` seconds for it."""
    readable, _, _ = select.select([writer.stdout], [], [], timeout)
    assert readable, f"writer {writer.pid} said nothing within {timeout} s"
    return writer.stdout.readline()  # type: ignore[union-attr]


def test_processes_appending_at_once_keep_one_chain_with_every_event_once(backend: Backend) -> None:
    url = _url(backend)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"p{n}", str(EVENTS_EACH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        for writer in writers:  # every store opened (schema created once, under its lock)
            assert read_line(writer, 60) == "ready\n"
        for writer in writers:
            writer.stdin.write("go\n")  # type: ignore[union-attr]
            writer.stdin.flush()  # type: ignore[union-attr]
        outputs = [writer.communicate(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    commits = [int(out.split()[1]) for out, _ in outputs]

    store = backend.make()
    events = [decode_row(row) for row in store.rows(EventQuery(), newest_first=False)]
    written = Counter(e.details["tool"] for e in events)
    report = verify_log(store)

    assert [w.returncode for w in writers] == [0] * PROCESSES
    assert report.ok, report
    assert [e.seq for e in events] == list(range(1, PROCESSES * EVENTS_EACH + 1))
    assert set(written) == {f"p{p}-{n}" for p in range(PROCESSES) for n in range(EVENTS_EACH)}
    assert set(written.values()) == {1}, "every event exactly once"
    assert all(c < EVENTS_EACH for c in commits), f"group commit shared commits among writes: {commits}"
