"""A small real MCP server for the tests: tools that block, report progress, or kill the server.

Run as `python crashy_server.py`; it speaks MCP over stdio with the SDK's `MCPServer`.
"""

from __future__ import annotations

import os
import sqlite3

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("crashy")


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
async def trace_context(ctx: Context) -> str:
    """The W3C trace context this request's `_meta` carried (`-` when none)."""
    meta = ctx.request_context.meta
    values = meta if isinstance(meta, dict) else (meta.model_dump() if meta is not None else {})
    return str(values.get("traceparent", "-"))


@server.tool()
def note(path: str, text: str) -> str:
    """Append `text` as a line to the file at `path`, durably: the upstream's own record of what reached it."""
    with open(path, "a", encoding="utf-8") as file:
        file.write(text + "\n")
        file.flush()
        os.fsync(file.fileno())
    return text


@server.tool()
async def die_midway(ctx: Context) -> str:
    """Report progress once, then kill this server process before answering."""
    await ctx.report_progress(1, 2, "about to die")
    os._exit(3)


@server.tool()
async def wait_forever(marker: str, ctx: Context) -> str:
    """Report progress, then block until cancelled; on cancellation, write `marker` (a file path)."""
    await ctx.report_progress(1, None, "waiting")
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await anyio.Path(marker).write_text("cancelled")
        raise
    return "unreachable"


@server.tool()
async def peek_audit(db_path: str, nonce: str) -> str:
    """Count the audit records of this very call that exist while it runs (write-ahead proof).

    Reads Bastion's audit database directly, from inside the upstream: a count of 1 means the
    record was committed before the call was forwarded here, chained (`events`) or waiting
    to be (`audit_pending`, where a lone call's record goes under `durability: power`).
    """
    uri = f"file:{db_path}?mode=ro"
    found = "SELECT count(*) FROM {} WHERE type = 'call.requested' AND tool = 'peek_audit' AND data LIKE ?"
    # One statement, so one snapshot: the writer moves the record from `audit_pending` into
    # `events` in one transaction, and two separate reads could fall either side of it.
    both = f"SELECT ({found.format('events')}) + ({found.format('audit_pending')})"
    with sqlite3.connect(uri, uri=True) as conn:
        (count,) = conn.execute(both, (f"%{nonce}%", f"%{nonce}%")).fetchone()
    return str(count)


if __name__ == "__main__":
    server.run("stdio")
