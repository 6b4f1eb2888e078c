"""One MCP server for many: `/mcp` (every server the caller may reach) and virtual servers.

An `AggregateServer` owns no upstream. Its lists are the union of the real servers' lists
(each obtained through that server's `ProxyServer.relay`, so filtered for the caller exactly
as at `/servers/<name>/mcp`), renamed by its `Catalogue`. A request that concerns one server
(`tools/call`, `prompts/get`, `resources/read`) is routed to the real server and tool before
it is recorded, so the audit names them, and is then served by that server's `ProxyServer`:
the same guard pipeline, approvals and result checks as the same call at its own endpoint.
The relay (`relay/aggregate.py`) serves it with the same routing (`route`) and `handlers`.

A server that is down is left out of the lists (`notifications/tools/list_changed` tells
legacy-era agents when it goes and comes back); a call to one of its tools gets an error
naming the server and why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import anyio

from bastion import __version__
from bastion.config import BastionConfig
from bastion.lazy_import import lazy_module
from bastion.mcp_names import INTERNAL_ERROR, INVALID_PARAMS, MODERN_PROTOCOL_VERSIONS
from bastion.model import Principal
from bastion.proxy.aggregate_catalogue import Catalogue
from bastion.proxy.downstream import AgentSession, DownstreamHub
from bastion.proxy.identity import ServedIdentity
from bastion.proxy.proxy import ProxyServer, RequestScope, outbound_params
from bastion.proxy.recording import CallRecorder, Target, current_call
from bastion.rpc_error import RpcError
from bastion.upstream.sdk_access import connection_of
from bastion.upstream.upstream import UpstreamUnavailable

if TYPE_CHECKING:
    import mcp_types as types
    from mcp.server.context import ServerMiddleware, ServerRequestContext

    from bastion.proxy.sdk_server import SdkHandler, SdkServer
else:  # the protocol-wide models: a quarter of a wrap's start, loaded by their first use
    types = lazy_module("mcp_types")

logger = logging.getLogger(__name__)

AGGREGATE_ENDPOINT = "aggregate"
_MAX_PAGES = 20
_MIN_RELIST_SECONDS = 1.0
_Lister = Callable[[str], Awaitable[list[dict[str, Any]]]]
_Handler = Callable[[RequestScope, Any], Awaitable[Any]]


class AggregateServer(ServedIdentity):
    """`/mcp` (`virtual=None`) or the virtual server `virtual`, over the gateway's `ProxyServer`s."""

    def __init__(
        self,
        servers: Mapping[str, ProxyServer],
        catalogue: Catalogue,
        recorder: CallRecorder,
        *,
        virtual: str | None = None,
        local_principal: Principal | None = None,
    ) -> None:
        self.name = virtual or "bastion"
        self.version = __version__
        self.servers = servers
        self.catalogue = catalogue
        self.virtual = virtual
        self.local_principal = local_principal
        """The user of `bastion wrap --all`, the caller of every request over stdio."""
        self.endpoint = AGGREGATE_ENDPOINT if virtual is None else f"virtual:{virtual}"
        self.hub = DownstreamHub(self.endpoint)
        self.recorder = recorder
        self._resources: dict[str, frozenset[str]] = {}
        """The resource URIs each server listed last (routes `resources/read`)."""
        self._resources_fetched: dict[str, float] = {}
        """When a read of an unseen URI last made us list a server's resources (bounds a flood of bogus reads)."""
        self.handlers: dict[str, _Handler] = {"tools/list": self._list_tools, "tools/call": self._call_tool}
        """The requests served here, by method (the SDK's server and the relay call the same handlers)."""
        if virtual is None:  # a virtual server is a tool set
            self.handlers |= {
                "prompts/list": self._list_prompts,
                "prompts/get": self._get_prompt,
                "resources/list": self._list_resources,
                "resources/templates/list": self._list_templates,
                "resources/read": self._read_resource,
            }

    @cached_property
    def sdk(self) -> SdkServer:
        """The SDK's `Server` with the same handlers (the reference path), built on first use."""
        from bastion.proxy.sdk_server import SdkServer

        return SdkServer(self)

    def sdk_requests(self) -> dict[str, tuple[type[types.RequestParams], SdkHandler]]:
        return {
            method: (types.CallToolRequestParams if method == "tools/call" else types.RequestParams, handler)
            for method, handler in self.handlers.items()
        }

    def sdk_notifications(self) -> dict[str, SdkHandler]:
        return {}

    def sdk_middleware(self) -> list[ServerMiddleware[Any]]:
        return [self.recorder.middleware(self)]

    def capabilities_wire(self, *, protocol_version: str | None = None) -> dict[str, Any]:
        """What the SDK's server derives from these handlers (no subscriptions, no list-change
        notices in the 2026 era), but for tools: servers drop out and come back, and legacy-era
        agents are told (`list_changes`). In the model's field order, as the wire has it."""
        capabilities: dict[str, Any] = {}
        if "prompts/list" in self.handlers:
            capabilities["prompts"] = {"listChanged": False}
        if "resources/list" in self.handlers:
            capabilities["resources"] = {"subscribe": False, "listChanged": False}
        capabilities["tools"] = {"listChanged": protocol_version not in MODERN_PROTOCOL_VERSIONS}
        return capabilities

    # What the recorder asks (`recording.RecordedServer`)

    @property
    def served_name(self) -> str:
        return self.virtual if self.virtual is not None else "/mcp"

    def principal_of(self, ctx: ServerRequestContext[Any, Any]) -> Principal | None:
        """The authenticated caller; at a virtual server it reaches, its tools' servers too."""
        scope = getattr(ctx.request, "scope", None)
        if not isinstance(scope, Mapping):
            return self.local_principal
        principal = scope.get("bastion.principal")
        return self.widened(principal) if isinstance(principal, Principal) else None

    def widened(self, principal: Principal) -> Principal:
        """The caller as this endpoint serves it: at a virtual server it reaches, its tools' servers too."""
        if self.virtual is not None and principal.servers is not None and principal.may_reach(self.virtual):
            # The credential reaches the tool set; which tools it holds is the catalogue's to say.
            return replace(principal, servers=principal.servers | frozenset(self.servers))
        return principal

    def bind_connection(self, ctx: ServerRequestContext[Any, Any], principal: Principal) -> AgentSession | None:
        return self.hub.join(connection_of(ctx), principal, ctx.session)

    async def target_of(self, ctx: ServerRequestContext[Any, Any], principal: Principal) -> Target:
        """The real server (and tool or prompt) of a request for one server; no server for a list."""
        return await self.route(ctx.method, ctx.params if isinstance(ctx.params, Mapping) else {}, principal)

    async def route(self, method: str, params: Mapping[str, Any], principal: Principal) -> Target:
        """Where a `method` request with `params` goes for `principal` (what `target_of` answers)."""
        name = params.get("name")
        if method == "tools/call" and isinstance(name, str):
            return await self._route_tool(principal, name)
        if method == "prompts/get" and isinstance(name, str):
            return await self._route_prompt(principal, name)
        if method == "resources/read" and isinstance(params.get("uri"), str):
            return await self._route_resource(principal, str(params["uri"]))
        return Target(None)

    # Tools

    async def _list_tools(self, ctx: RequestScope, params: Any) -> dict[str, Any]:
        lists = await self._gather(lambda server: self._pages(ctx, server, "tools/list", "tools"))
        tools: list[dict[str, Any]] = []
        seen: set[str] = set()
        for server, listed in lists.items():
            for tool in listed:
                exposed = self.catalogue.expose_tool(server, tool)
                if exposed is not None and exposed["name"] not in seen:
                    seen.add(exposed["name"])
                    tools.append(exposed)
        return _result(ctx, {"tools": tools})

    async def _call_tool(self, ctx: RequestScope, params: Any) -> Any:
        server, tool = _routed()
        raw = {**outbound_params(ctx.params), "name": tool}
        arguments = params.arguments if isinstance(params, types.CallToolRequestParams) else raw.get("arguments")
        return await self.servers[server].call_tool(ctx, tool, arguments or {}, raw)

    async def _route_tool(self, principal: Principal, exposed: str) -> Target:
        problems: list[str] = []
        for server in self.catalogue.tool_owners(exposed):
            if not principal.may_reach(server):
                continue
            proxy = self.servers[server]
            try:
                await proxy.upstream.ensure_started()
                tools = await proxy.tools.listing()
            except UpstreamUnavailable as exc:
                problems.append(str(exc))
                continue
            except RpcError as exc:
                problems.append(f"server {server!r} did not list its tools: {exc.message}")
                continue
            tool = self.catalogue.real_tool(server, exposed, tools)
            if tool is not None:
                return Target(server, tool)
        return Target(None, exposed, _unknown("tool", exposed, problems))

    # Prompts

    async def _list_prompts(self, ctx: RequestScope, params: Any) -> dict[str, Any]:
        lists = await self._gather(lambda server: self._pages(ctx, server, "prompts/list", "prompts"))
        prompts: list[dict[str, Any]] = []
        seen: set[str] = set()
        for server, listed in lists.items():
            for prompt in listed:
                name = self.catalogue.prompt_name(server, str(prompt.get("name")))
                if name not in seen:
                    seen.add(name)
                    prompts.append({**prompt, "name": name})
        return _result(ctx, {"prompts": prompts})

    async def _get_prompt(self, ctx: RequestScope, params: Any) -> dict[str, Any]:
        server, prompt = _routed()
        raw = {**outbound_params(ctx.params), "name": prompt}
        return await self.servers[server].relay(ctx, "prompts/get", raw)

    async def _route_prompt(self, principal: Principal, exposed: str) -> Target:
        problems: list[str] = []
        for server in self.catalogue.prompt_owners(exposed):
            if not principal.may_reach(server):
                continue
            plain = exposed.removeprefix(self.catalogue.prefixes[server] + "__")
            if self.catalogue.prompt_name(server, plain) == exposed:
                return Target(server, plain)  # a name as is: no list to fetch (the server refuses one it lacks)
            try:
                names = [str(p.get("name")) for p in await self._upstream_pages(server, "prompts/list", "prompts")]
            except (UpstreamUnavailable, RpcError) as exc:
                problems.append(_why(server, exc))
                continue
            for name in names:
                if self.catalogue.prompt_name(server, name) == exposed:
                    return Target(server, name)
        return Target(None, exposed, _unknown("prompt", exposed, problems))

    # Resources (they keep their URIs)

    async def _list_resources(self, ctx: RequestScope, params: Any) -> dict[str, Any]:
        lists = await self._gather(lambda server: self._pages(ctx, server, "resources/list", "resources"))
        resources: list[dict[str, Any]] = []
        seen: set[str] = set()
        for server, listed in lists.items():
            self._resources[server] = frozenset(str(r.get("uri")) for r in listed)
            for resource in listed:
                uri = str(resource.get("uri"))
                if uri not in seen:  # listed by two servers: the first configured serves it
                    seen.add(uri)
                    resources.append(resource)
        return _result(ctx, {"resources": resources})

    async def _list_templates(self, ctx: RequestScope, params: Any) -> dict[str, Any]:
        method = "resources/templates/list"
        lists = await self._gather(lambda server: self._pages(ctx, server, method, "resourceTemplates"))
        return _result(ctx, {"resourceTemplates": [t for listed in lists.values() for t in listed]})

    async def _read_resource(self, ctx: RequestScope, params: Any) -> dict[str, Any]:
        server, _ = _routed()
        return await self.servers[server].relay(ctx, "resources/read", outbound_params(ctx.params))

    async def _route_resource(self, principal: Principal, uri: str) -> Target:
        reachable = [s for s in self.catalogue.order if principal.may_reach(s)]
        for server in reachable:
            if uri in self._resources.get(server, ()):
                return Target(server)
        problems: list[str] = []
        now = anyio.current_time()
        for server in reachable:  # not seen yet: ask the servers what they list now (at most once a second)
            if now - self._resources_fetched.get(server, -math.inf) < _MIN_RELIST_SECONDS:
                continue
            self._resources_fetched[server] = now
            try:
                listed = await self._upstream_pages(server, "resources/list", "resources")
            except (UpstreamUnavailable, RpcError) as exc:
                problems.append(_why(server, exc))
                continue
            self._resources[server] = frozenset(str(r.get("uri")) for r in listed)
            if uri in self._resources[server]:
                return Target(server)
        return Target(None, None, _unknown("listed resource", uri, problems))

    # Plumbing

    async def _gather(self, lister: _Lister) -> dict[str, list[dict[str, Any]]]:
        """Each reachable server's list, in configuration order; a server down or failing is left out."""
        state = current_call.get()
        principal = state.principal if state is not None else None
        if principal is None:
            raise RpcError(INTERNAL_ERROR, "Bastion: the caller is not authenticated")
        servers = [s for s in self.catalogue.order if principal.may_reach(s) and self.servers[s].upstream.is_up]
        found: dict[str, list[dict[str, Any]]] = {}

        async def one(server: str) -> None:
            try:
                found[server] = await lister(server)
            except (UpstreamUnavailable, RpcError) as exc:
                logger.warning("%s: leaving server %s out of a list: %s", self.endpoint, server, _why(server, exc))

        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(one, server)
        return {server: found[server] for server in servers if server in found}

    async def _pages(self, ctx: RequestScope, server: str, method: str, key: str) -> list[Any]:
        """Every page of a list, through the server's proxy (which filters tools for the caller)."""
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            result = await self.servers[server].relay(ctx, method, {"cursor": cursor} if cursor else {})
            items += [item for item in result.get(key) or [] if isinstance(item, dict)]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return items

    async def _upstream_pages(self, server: str, method: str, key: str) -> list[dict[str, Any]]:
        """A list straight from the upstream, for routing only (never shown to the agent)."""
        upstream = self.servers[server].upstream
        await upstream.ensure_started()
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            result = await upstream.request(method, {"cursor": cursor} if cursor else None)
            items += [item for item in result.get(key) or [] if isinstance(item, dict)]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return items


def _routed() -> tuple[str, str]:
    """The server (and name) `target_of` routed the current request to; its error when it found none."""
    state = current_call.get()
    target = state.target if state is not None else None
    if target is None:
        raise RpcError(INTERNAL_ERROR, "Bastion: the request was not routed")
    if target.server is None:
        down = target.error is not None and "unavailable" in target.error
        code = INTERNAL_ERROR if down else INVALID_PARAMS
        raise RpcError(code, target.error or "Bastion: no server serves this request")
    return target.server, target.tool or ""


def _unknown(kind: str, name: str, problems: list[str]) -> str:
    if problems:
        return f"Bastion: {kind} {name!r} is unavailable: " + "; ".join(problems)
    return f"Bastion: no {kind} named {name!r} at this endpoint"


def _why(server: str, exc: Exception) -> str:
    if isinstance(exc, RpcError):
        return f"server {server!r} answered: {exc.message}"
    return str(exc)


def _result(ctx: RequestScope, result: dict[str, Any]) -> dict[str, Any]:
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        result["resultType"] = "complete"
    return result


def aggregate_servers(
    config: BastionConfig,
    servers: Mapping[str, ProxyServer],
    recorder: CallRecorder,
    local_principal: Principal | None = None,
) -> tuple[AggregateServer, dict[str, AggregateServer]]:
    """`/mcp` (`local_principal`: served over stdio by `bastion wrap --all`), and each virtual server by name."""
    everything = AggregateServer(servers, Catalogue(config), recorder, local_principal=local_principal)
    virtual = {
        name: AggregateServer(servers, Catalogue(config, entry.tools), recorder, virtual=name)
        for name, entry in config.virtual_servers.items()
    }
    return everything, virtual
