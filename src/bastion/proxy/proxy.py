"""The MCP server an agent talks to: one upstream's identity, capabilities and forwarding.

Bastion's relay (`bastion.relay`) does the wire work on the agent's side; this module mirrors
the upstream's identity and capabilities, forwards each request raw, relays progress and
cancellation, and puts every `tools/call` through the guard pipeline. It imports no SDK: the
SDK's `Server` serving the same handlers (`sdk`, the reference path) is built on first use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from bastion.guard.pipeline import ContentWithheld, GuardPipeline, denial_message
from bastion.lazy_import import lazy_module
from bastion.mcp_names import CONNECTION_CLOSED, INTERNAL_ERROR, MODERN_PROTOCOL_VERSIONS
from bastion.model import Principal, ToolCall
from bastion.proxy.downstream import AgentChannel, DownstreamHub
from bastion.proxy.identity import ServedIdentity
from bastion.proxy.recording import CallRecorder, Target, current_call
from bastion.proxy.tool_definitions import ToolDefinitions
from bastion.rpc_error import RpcError
from bastion.upstream.sdk_access import connection_of
from bastion.upstream.upstream import Upstream, UpstreamUnavailable

if TYPE_CHECKING:
    import mcp_types as types
    from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext

    from bastion.proxy.sdk_server import SdkHandler, SdkServer
else:  # the protocol-wide models: a quarter of a wrap's start, loaded by their first use
    types = lazy_module("mcp_types")

FORWARDED_METHODS: tuple[str, ...] = (
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
)
"""Client requests passed to the upstream. `ping`, `initialize` and `server/discover` are answered here."""

CHECKED_CONTENT = frozenset({"resources/read", "prompts/get"})
"""Non-tool results the result checks read (tool results go through `GuardPipeline.check_result`)."""

_RESERVED_META_PREFIX = "io.modelcontextprotocol/"

_HANDSHAKE_METHODS = frozenset({"initialize", "server/discover"})


_UNOFFERED = frozenset({"tasks", "extensions"})
"""Upstream capabilities never offered to agents (Bastion relays neither)."""


class RequestScope(Protocol):
    """What forwarding reads of the request being served: the SDK's `ServerRequestContext`, or a relay flow's."""

    @property
    def session(self) -> Any:
        """Where progress (`report_progress`) and server-to-client requests for this request go."""

    @property
    def request_id(self) -> types.RequestId | None: ...

    @property
    def params(self) -> Mapping[str, Any] | None: ...

    @property
    def protocol_version(self) -> str: ...


class ProxyServer(ServedIdentity):
    """Presents one upstream to agents, under the upstream's own name and capabilities."""

    endpoint: str | None = None

    def __init__(
        self,
        upstream: Upstream,
        pipeline: GuardPipeline,
        recorder: CallRecorder,
        *,
        local_principal: Principal | None = None,
    ) -> None:
        self.name = upstream.name
        self.version = ""
        self.upstream = upstream
        self.pipeline = pipeline
        self.hub = DownstreamHub(upstream.name)
        self.tools = ToolDefinitions(upstream.request, lambda: upstream.starts)
        self.local_principal = local_principal
        self.recorder = recorder
        self.tracer = recorder.tracer

    @cached_property
    def sdk(self) -> SdkServer:
        """The SDK's `Server` with this server's handlers (the reference path), built on first use."""
        from bastion.proxy.sdk_server import SdkServer

        return SdkServer(self)

    def sdk_requests(self) -> dict[str, tuple[type[types.RequestParams], SdkHandler]]:
        handlers: dict[str, tuple[type[types.RequestParams], SdkHandler]] = {
            method: (types.RequestParams, self._forward) for method in FORWARDED_METHODS
        }
        handlers["tools/call"] = (types.CallToolRequestParams, self._call_tool)
        return handlers

    def sdk_notifications(self) -> dict[str, SdkHandler]:
        return {"notifications/roots/list_changed": self._roots_changed}

    def sdk_middleware(self) -> list[ServerMiddleware[Any]]:
        return [self.recorder.middleware(self), self._upstream_ready]

    def adopt_upstream_identity(self) -> None:
        """Show agents the upstream's name, version and instructions once its session is open."""
        info = self.upstream.info
        if info is None:
            return
        if info.server_info is not None:
            self.name = info.server_info["name"]
            self.version = info.server_info["version"]
            self.title = info.server_info.get("title")
        self.instructions = info.instructions
        self.identity_changed()

    def capabilities_wire(self, *, protocol_version: str | None = None) -> dict[str, Any]:
        info = self.upstream.info
        if info is None:
            return {}
        # Only what Bastion forwards is offered: no tasks, no extension methods.
        capabilities = {key: copy.deepcopy(value) for key, value in info.capabilities.items() if key not in _UNOFFERED}
        if protocol_version in MODERN_PROTOCOL_VERSIONS:
            # Change notices reach 2026 agents only over subscriptions/listen, which is not relayed.
            for part in ("tools", "prompts"):
                if part in capabilities:
                    capabilities[part] = {"listChanged": False}
            if "resources" in capabilities:
                capabilities["resources"] = {"subscribe": False, "listChanged": False}
        return capabilities

    async def _upstream_ready(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Before answering a handshake, make sure the upstream is up, so the agent sees its capabilities."""
        if ctx.method in _HANDSHAKE_METHODS:
            try:
                await self.upstream.ensure_started()
            except UpstreamUnavailable as exc:
                raise RpcError(INTERNAL_ERROR, f"Bastion: {exc}") from exc
            self.adopt_upstream_identity()
        return await call_next(ctx)

    def bind_connection(self, ctx: ServerRequestContext[Any, Any], principal: Principal) -> Any:
        """Register the agent session a request came in on, so notifications can reach it later."""
        return self.hub.join(connection_of(ctx), principal, ctx.session)

    async def target_of(self, ctx: ServerRequestContext[Any, Any], principal: Principal) -> Target:
        """This upstream, and the tool a `tools/call` names."""
        name = ctx.params.get("name") if ctx.method == "tools/call" and isinstance(ctx.params, Mapping) else None
        return Target(self.upstream.name, name if isinstance(name, str) else None)

    @property
    def served_name(self) -> str:
        return self.upstream.name

    def principal_of(self, ctx: ServerRequestContext[Any, Any]) -> Principal | None:
        """Who sent this request: the authenticated HTTP principal, or the local user over stdio."""
        request = ctx.request
        scope = getattr(request, "scope", None)
        if isinstance(scope, Mapping):
            principal = scope.get("bastion.principal")
            return principal if isinstance(principal, Principal) else None
        return self.local_principal

    async def _forward(self, ctx: ServerRequestContext[Any, Any], params: Any) -> dict[str, Any]:
        return await self.relay(ctx, ctx.method, outbound_params(ctx.params))

    async def relay(self, ctx: RequestScope, method: str, raw: dict[str, Any]) -> dict[str, Any]:
        """Send `method` with `raw` params upstream for the agent of `ctx`; its result as the agent gets it.

        Tool lists are filtered for the caller, resource contents and prompts pass the result checks.
        """
        state = current_call.get()
        agent = state.agent if state is not None else None
        if method == "resources/subscribe" and agent is not None:
            agent.subscriptions.add(str(raw.get("uri")))
        elif method == "resources/unsubscribe" and agent is not None:
            agent.subscriptions.discard(str(raw.get("uri")))
        channel: AgentChannel = ctx.session
        token = self.hub.begin(agent, channel, ctx.request_id)
        span = self.tracer.upstream(self.upstream.name, method, raw) if self.tracer is not None else None
        try:
            wants_progress = progress_token_of(ctx.params) is not None
            on_progress = ctx.session.report_progress if wants_progress else None
            result = _inbound_result(await self.upstream.request(method, raw, on_progress=on_progress))
        except RpcError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise
            again = "reopened" if self.upstream.config.kind == "http" else "restarted"
            raise RpcError(
                INTERNAL_ERROR,
                f"Bastion: server {self.upstream.name!r} stopped while handling this request; "
                f"it is {again} on the next request",
            ) from exc
        finally:
            self.hub.end(token)
            if span is not None:
                span.end()
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and "resultType" not in result:
            # A handshake-era upstream's result, going to a 2026 agent: results are complete there.
            result["resultType"] = "complete"
        if method == "tools/list":
            result = await self._filter_tool_list(raw, result)
        elif method in CHECKED_CONTENT:
            result = await self._check_content(method, raw, result)
        return result

    async def _check_content(self, method: str, params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Resource contents and prompt messages pass the result checks, as tool results do."""
        state = current_call.get()
        if state is None or state.principal is None:
            raise RpcError(INTERNAL_ERROR, "Bastion: the caller is not authenticated")
        call = ToolCall(state.call_id, state.principal, self.upstream.name, method, params, session=state.session)
        try:
            return await self.pipeline.check_content(call, method, result)
        except ContentWithheld as exc:
            raise RpcError(INTERNAL_ERROR, str(exc)) from exc

    async def _filter_tool_list(self, params: Mapping[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Remember the declared tools, then show the agent only those the guard checks let it see."""
        tools = [tool for tool in result.get("tools") or [] if isinstance(tool, dict)]
        self.tools.remember(tools, complete=not params.get("cursor") and not result.get("nextCursor"))
        state = current_call.get()
        principal = state.principal if state is not None else None
        if principal is None:
            return {**result, "tools": []}
        return {**result, "tools": await self.pipeline.filter_tools(principal, self.upstream.name, tools)}

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        return await self.call_tool(ctx, params.name, params.arguments or {}, outbound_params(ctx.params))

    async def call_tool(self, ctx: RequestScope, name: str, arguments: dict[str, Any], raw: dict[str, Any]) -> Any:
        """Judge a call of tool `name` through the guard pipeline and, when allowed, forward `raw` upstream."""
        state = current_call.get()
        principal = state.principal if state is not None else None
        if state is None or principal is None:
            # Unreachable through the front doors; refuse rather than forward unattributed.
            return _tool_error("Bastion denied this tool call: the caller is not authenticated [check: auth]")
        try:
            # A server that died is restarted first, so the call is judged by the tools the
            # running server declares, not by a copy cached from before it went away.
            await self.upstream.ensure_started()
            definition = await self.tools.definition(name)
        except UpstreamUnavailable as exc:
            raise RpcError(INTERNAL_ERROR, f"Bastion: {exc}") from exc
        except RpcError as exc:
            raise RpcError(
                INTERNAL_ERROR,
                f"Bastion: could not read the tool list of server {self.upstream.name!r}: {exc.message}",
            ) from exc
        call = ToolCall(
            call_id=state.call_id,
            principal=principal,
            server=self.upstream.name,
            tool=name,
            arguments=arguments,
            definition=definition,
            session=state.session,
        )
        try:
            verdict = await self.pipeline.evaluate(call)
            state.decide(verdict)
            if not verdict.allowed:
                return _tool_error(denial_message(verdict))
            await self.recorder.on_disk(state)  # write-ahead: on disk before the server has it
            result = await self.pipeline.check_result(call, await self.relay(ctx, "tools/call", raw))
            if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and "resultType" not in result:
                result = {**result, "resultType": "complete"}  # a result a check replaced
            return result
        finally:
            self.pipeline.ended(call)

    async def _roots_changed(self, ctx: ServerRequestContext[Any, Any], params: Any) -> None:
        await self.upstream.notify("notifications/roots/list_changed", None)


def outbound_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The agent's params minus what belongs to its own hop: era envelope keys and progress token."""
    out = dict(params or {})
    meta = out.get("_meta")
    if meta is not None and isinstance(meta, Mapping):  # None (the usual) without a trip through abc
        kept = {k: v for k, v in meta.items() if k != "progressToken" and not k.startswith(_RESERVED_META_PREFIX)}
        if kept:
            out["_meta"] = kept
        else:
            out.pop("_meta")
    return out


def progress_token_of(params: Mapping[str, Any] | None) -> str | int | None:
    """`params._meta.progressToken` (a bool is none: it would alias 1), as the SDK reads it."""
    meta = params.get("_meta") if params is not None else None
    token = meta.get("progressToken") if meta is not None and isinstance(meta, Mapping) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def _inbound_result(result: dict[str, Any]) -> dict[str, Any]:
    """The upstream's result minus its own era stamps; the SDK stamps ours for the agent's era."""
    meta = result.get("_meta")
    if meta is not None and isinstance(meta, Mapping) and any(k.startswith(_RESERVED_META_PREFIX) for k in meta):
        kept = {k: v for k, v in meta.items() if not k.startswith(_RESERVED_META_PREFIX)}
        result = {**result, "_meta": kept} if kept else {k: v for k, v in result.items() if k != "_meta"}
    return result


def _tool_error(message: str) -> dict[str, Any]:
    """A tool result that reports an error, as the SDK's `CallToolResult` dumps it."""
    return {"content": [{"type": "text", "text": message}], "isError": True, "resultType": "complete"}
