"""A small real MCP server for the relay's differential tests: one of each thing a server can do.

Tools that echo, fail, report progress, log, wait to be cancelled, ask the agent (sampling,
roots); a resource, a template, a prompt with completion. Run as `python relay_probe_server.py`
(both eras) or with `--legacy` (the handshake era only); it speaks MCP over stdio with the SDK's
`MCPServer`.
"""

from __future__ import annotations

import sys

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("relay-probe", instructions="A probe for the relay's differential tests.")


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
async def fail(reason: str) -> str:
    """Fail with `reason` (a tool error)."""
    raise ValueError(reason)


@server.tool()
async def count(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
    return f"counted {steps}"


@server.tool()
async def shout(text: str, ctx: Context) -> str:
    """Log `text` at warning level, then answer it."""
    await ctx.warning(text)
    return text.upper()


@server.tool()
async def wait_forever(ctx: Context) -> str:
    """Report progress once, then block until cancelled."""
    await ctx.report_progress(1, None, "waiting")
    await anyio.sleep_forever()
    return "unreachable"


@server.tool()
async def ask_model(question: str, ctx: Context) -> str:
    """Ask the agent's model (sampling) and answer what it said."""
    result = await ctx.session.create_message(
        messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))],
        max_tokens=20,
    )
    content = result.content
    return f"model said: {getattr(content, 'text', content)}"


@server.tool()
async def list_roots(ctx: Context) -> str:
    """The agent's roots."""
    roots = await ctx.session.list_roots()
    return ",".join(str(root.uri) for root in roots.roots)


@server.resource("probe://note", mime_type="text/plain")
def note() -> str:
    """A note."""
    return "a note from the probe"


@server.resource("probe://item/{item}")
def item(item: str) -> str:
    """An item by name."""
    return f"item {item}"


@server.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Hello, {name}!"


@server.completion()
async def complete(ref, argument, context) -> types.Completion | None:  # type: ignore[no-untyped-def]
    if argument.name == "name":
        names = ["Ada", "Alan", "Grace"]
        return types.Completion(values=[n for n in names if n.startswith(argument.value)], has_more=False)
    return None


async def serve_handshake_era_only() -> None:
    """Speak only the handshake era (no `server/discover`): server-to-client requests then go in-band."""
    from mcp.server.runner import serve_loop
    from mcp.server.stdio import stdio_server

    lowlevel = server._lowlevel_server
    async with stdio_server() as (read, write), lowlevel.lifespan(lowlevel) as state:
        await serve_loop(lowlevel, read, write, lifespan_state=state)


if __name__ == "__main__":
    if "--legacy" in sys.argv:
        anyio.run(serve_handshake_era_only)
    else:
        server.run("stdio")
