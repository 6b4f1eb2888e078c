"""A real MCP server exercising every message an upstream session relays, for the differential tests.

Run as `python scripted_server.py stdio ERA` or `python scripted_server.py http ERA` (HTTP on a
free port; uvicorn logs `Uvicorn running on http://...` once it listens). ERA is `modern`
(answers `server/discover`: 2026-07-28) or `handshake` (refuses it, so the client falls back
to `initialize`, and server-to-client requests ride on the session).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import METHOD_NOT_FOUND

TRANSPORT = sys.argv[1] if len(sys.argv) > 1 else "stdio"
ERA = sys.argv[2] if len(sys.argv) > 2 else "modern"


async def handshake_only(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    if ctx.method == "server/discover":
        raise MCPError(code=METHOD_NOT_FOUND, message="Method not found")
    return await call_next(ctx)


server = MCPServer(
    "scripted",
    instructions="A scripted server for differential tests.",
    middleware=[handshake_only] if ERA == "handshake" else None,
)


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
async def number(value: int) -> int:
    """Return the number (beyond 64 bits too)."""
    return value


@server.tool()
async def fails(reason: str) -> str:
    """Raise: the result is a tool error."""
    raise ValueError(reason)


@server.tool()
async def refuses() -> str:
    """Answer with a JSON-RPC error."""
    raise MCPError(code=-32042, message="refused on purpose", data={"why": "scripted"})


@server.tool()
async def steps(count: int, ctx: Context) -> str:
    """Report `count` progress steps, then answer."""
    for step in range(1, count + 1):
        await ctx.report_progress(step, count, f"step {step}")
    return f"{count} steps"


@server.tool()
async def logs(ctx: Context) -> str:
    """Log at two levels, then answer."""
    await ctx.info("an info line")
    await ctx.warning("a warning line")
    return "logged"


@server.tool()
async def changed(ctx: Context) -> str:
    """Tell the client the tool list changed (outside any request: the GET stream over HTTP)."""
    await ctx.session.send_tool_list_changed()
    return "told"


@server.tool()
async def sample(prompt: str, ctx: Context) -> str:
    """Ask the client's model (sampling), return its text."""
    result = await ctx.session.create_message(
        [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))], max_tokens=20
    )
    content = result.content
    return content.text if isinstance(content, types.TextContent) else str(content)


@server.tool()
async def ask(question: str, ctx: Context) -> str:
    """Ask the user (elicitation), return the answer."""
    schema: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string"}}}
    result = await ctx.session.elicit(question, schema)
    return f"{result.action}: {result.content}"


@server.tool()
async def roots(ctx: Context) -> str:
    """List the client's roots."""
    result = await ctx.session.list_roots()
    return ",".join(str(root.uri) for root in result.roots)


@server.tool()
async def wait_forever(marker: str, ctx: Context) -> str:
    """Block until cancelled; on cancellation, write `marker` (a file path)."""
    await ctx.report_progress(1, None, "waiting")
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await anyio.Path(marker).write_text("cancelled")
        raise
    return "unreachable"


@server.tool()
async def die() -> str:
    """Kill this server process before answering."""
    os._exit(3)


@server.resource("scripted://notes/{name}")
def note(name: str) -> str:
    """A note by name."""
    return f"note {name}"


@server.resource("scripted://readme")
def readme() -> str:
    """The readme."""
    return "read me"


@server.prompt()
def greet(name: str) -> str:
    """A greeting prompt."""
    return f"Say hello to {name}"


@server.completion()
async def complete(
    ref: types.PromptReference | types.ResourceTemplateReference,
    argument: types.CompletionArgument,
    context: types.CompletionContext | None,
) -> types.Completion:
    names = ["alice", "albert", "bob"]
    return types.Completion(values=[n for n in names if n.startswith(argument.value)], has_more=False)


async def serve_stdio_handshake_only() -> None:
    """stdio, answering `server/discover` with METHOD_NOT_FOUND before the server sees it (a server
    from before 2026-07-28: its era is settled by the first message, so a middleware is too late)."""
    async with stdio_server() as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[Any](0)

        async def refuse_discover() -> None:
            async with send:
                async for item in read_stream:
                    message = getattr(item, "message", None)
                    if isinstance(message, types.JSONRPCRequest) and message.method == "server/discover":
                        error = types.ErrorData(code=METHOD_NOT_FOUND, message="Method not found")
                        await write_stream.send(
                            SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error))
                        )
                    else:
                        await send.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(refuse_discover)
            lowlevel = server._lowlevel_server
            await lowlevel.run(receive, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()


async def serve_http() -> None:
    config = uvicorn.Config(
        server.streamable_http_app(host="127.0.0.1"), host="127.0.0.1", port=0, log_level="info", access_log=False
    )
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    if TRANSPORT == "http":
        anyio.run(serve_http)
    elif ERA == "handshake":
        anyio.run(serve_stdio_handshake_only)
    else:
        server.run()
