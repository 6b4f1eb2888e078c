"""A small real MCP server whose tool list comes in pages and grows: pagination and list-changed
for the aggregate endpoint's differential test.

`tools/list` answers two tools a page (`nextCursor` names the next); `grow` adds a tool and
sends `notifications/tools/list_changed`. Every other tool answers its own name and arguments.
Run as `python paging_probe_server.py`; the handshake era only, over stdio, with the SDK's
low-level `Server`.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server

PAGE = 2
tools = ["add", "sub", "mul", "grow"]


def _tool(name: str) -> types.Tool:
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
    return types.Tool(name=name, description=f"The {name} tool.", input_schema=schema)


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    page = [_tool(name) for name in tools[start : start + PAGE]]
    more = start + PAGE < len(tools)
    return types.ListToolsResult(tools=page, next_cursor=str(start + PAGE) if more else None)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name == "grow":
        tools.append(f"grown{len(tools)}")
        await ctx.session.send_tool_list_changed()
    text = f"{params.name} {sorted((params.arguments or {}).items())}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


server = Server("paging-probe", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    from mcp.server.runner import serve_loop
    from mcp.server.stdio import stdio_server

    options = server.create_initialization_options(NotificationOptions(tools_changed=True))
    async with stdio_server() as (read, write), server.lifespan(server) as state:
        await serve_loop(server, read, write, lifespan_state=state, init_options=options)


if __name__ == "__main__":
    anyio.run(main)
