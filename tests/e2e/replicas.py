"""Gateway replicas for the scale-out tests: `bastion up` processes sharing one PostgreSQL
database (`database_url`), and the database's approval notifications to wait on.

Used by test_shared_state.py and test_scale_out.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.e2e.conftest import BASTION, STARTUP_TIMEOUT, LineReader, RunningGateway


def start_replica(config_path: Path, token: str = "") -> RunningGateway:
    """`bastion up`, waiting (bounded) for its URL; `token` is the one tests use by default.

    Without `token`, waits for the first-run token it prints (only the first replica on an
    empty database prints one).
    """
    process = subprocess.Popen(
        [BASTION, "up", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    reader = LineReader(process.stdout)
    try:
        base_url = reader.wait_for(r"serving on (http://\S+)", STARTUP_TIMEOUT)[1]
        if not token:
            token = reader.wait_for(r"^(bst_\S+)$", 10)[1]
    except BaseException:
        process.kill()
        raise
    return RunningGateway(config_path, base_url, token, process, reader, config_path.parent / "data")


def cli_ok(gateway: RunningGateway, *args: str) -> str:
    """The `bastion` CLI against `gateway`'s configuration; its stdout (it must exit 0)."""
    done = gateway.cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def last_line(output: str) -> str:
    """A token the CLI printed (its last line)."""
    return output.strip().splitlines()[-1]


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


class ApprovalFeed:
    """The shared database's approval notifications, as they come: a test waits on them, never polls.

    Each approval notifies twice on its channel: when a replica creates it, and when it is decided.
    """

    def __init__(self, notifies: AsyncIterator[psycopg.Notify]) -> None:
        self._notifies = notifies

    async def next_id(self) -> str:
        note = await anext(self._notifies)
        return note.payload


@asynccontextmanager
async def approval_feed(url: str) -> AsyncIterator[ApprovalFeed]:
    """LISTEN to the approvals channel of the schema `url` (from `postgres_schema()`) uses."""
    schema = url.rsplit("%3D", 1)[1]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listen:
        await listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(f"bastion.approvals.{schema}")))
        # Closed before the connection: a running notifies() generator holds the connection.
        async with aclosing(listen.notifies()) as notifies:
            yield ApprovalFeed(notifies)
