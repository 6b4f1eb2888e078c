"""An AgentDojo suite's tools served as an MCP server over the suite's environment.

Run as `python agentdojo_server.py SUITE STATE_DIR` (MCP over stdio). `bench_load(pair)`
loads the environment with the injections in `STATE_DIR/<pair>.json` (the attack's texts,
placed in the vectors the user task reads); every tool call runs on that environment, and
after each call the environment is written to `STATE_DIR/<pair>.env.pickle` for scoring.
Tool results are what AgentDojo shows a model: the YAML dump of the function's return value.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from agentdojo.agent_pipeline.tool_execution import tool_result_to_str  # type: ignore[import-untyped]
from agentdojo.functions_runtime import FunctionsRuntime, TaskEnvironment  # type: ignore[import-untyped]
from agentdojo.task_suite.load_suites import get_suite  # type: ignore[import-untyped]
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

BENCHMARK_VERSION = "v1.2.1"


class SuiteServer:
    def __init__(self, suite_name: str, state: Path) -> None:
        self.suite = get_suite(BENCHMARK_VERSION, suite_name)
        self.runtime = FunctionsRuntime(self.suite.tools)
        self.state = state
        self.pair = ""
        self.env: TaskEnvironment | None = None
        self.server: Server[Any] = Server(f"agentdojo-{suite_name}")
        self.server.add_request_handler("tools/list", types.RequestParams, self.list_tools)
        self.server.add_request_handler("tools/call", types.CallToolRequestParams, self.call_tool)

    async def list_tools(self, ctx: Any, params: Any) -> dict[str, Any]:
        tools = [
            {"name": f.name, "description": f.description, "inputSchema": f.parameters.model_json_schema()}
            for f in self.suite.tools
        ]
        load = {"type": "object", "properties": {"pair": {"type": "string"}}, "required": ["pair"]}
        tools.append({"name": "bench_load", "description": "Load the benchmark environment.", "inputSchema": load})
        return {"tools": tools, "ttlMs": 0, "cacheScope": "private", "resultType": "complete"}

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> dict[str, Any]:
        arguments = dict(params.arguments or {})
        if params.name == "bench_load":
            self.pair = str(arguments["pair"])
            injections = json.loads((self.state / f"{self.pair}.json").read_text(encoding="utf-8"))
            self.env = self.suite.load_and_inject_default_environment(injections)
            self._dump()
            return _text("loaded")
        if self.env is None:
            return _text("no environment loaded", error=True)
        result, error = self.runtime.run_function(self.env, params.name, arguments)
        self._dump()
        if error is not None:
            return _text(error, error=True)
        return _text(tool_result_to_str(result))

    def _dump(self) -> None:
        assert self.env is not None
        # Pickled, not JSON: a JSON round trip changes values some utility checks compare.
        (self.state / f"{self.pair}.env.pickle").write_bytes(pickle.dumps(self.env))

    async def run(self) -> None:
        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())


def _text(text: str, *, error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": error, "resultType": "complete"}


if __name__ == "__main__":
    anyio.run(SuiteServer(sys.argv[1], Path(sys.argv[2])).run)
