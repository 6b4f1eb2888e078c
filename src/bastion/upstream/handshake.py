"""Opening a session, on Bastion's own JSON-RPC session: the newest era the server speaks.

`server/discover` (2026-07-28) first, retried once at a version both sides know when the
server names its own; a server that refuses it gets the handshake (`initialize`, then
`notifications/initialized`). The results are read as the SDK's models read them: exactly
what the SDK's `ClientSession.discover()` / `initialize()` accept, kept as the models dump it.
A result of the plain shape servers send is read without the models (`handshake_shapes`:
they are a quarter of what a `bastion wrap` imports before its first answer); any other is
validated by them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from bastion import handshake_shapes
from bastion.lazy_import import lazy_module
from bastion.mcp_names import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MCP_METHOD_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    MODERN_PROTOCOL_VERSIONS,
    PROTOCOL_VERSION_META_KEY,
    REQUEST_TIMEOUT,
    SERVER_INFO_META_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from bastion.rpc_error import RpcError
from bastion.upstream.jsonrpc_session import JsonRpcSession

if TYPE_CHECKING:
    import mcp_types as types
else:  # the protocol-wide models: a quarter of a wrap's start, loaded for a result that is not plain
    types = lazy_module("mcp_types")

__all__ = ["UpstreamInfo", "negotiate"]

DISCOVER_TIMEOUT = 10.0
"""How long a `server/discover` probe may wait before the handshake is tried (the SDK's figure)."""


@dataclass(frozen=True, slots=True)
class UpstreamInfo:
    """What the upstream said about itself in the handshake, as the SDK's models dump it."""

    protocol_version: str
    server_info: dict[str, Any] | None
    """Its `Implementation` (None: a 2026-era server that did not stamp one)."""
    capabilities: dict[str, Any]
    """Its `ServerCapabilities`."""
    instructions: str | None


async def negotiate(
    session: JsonRpcSession, client_info: Mapping[str, Any], capabilities: Mapping[str, Any]
) -> UpstreamInfo:
    """Speak the newest era the server offers: `server/discover` first, else the handshake.
    `client_info` and `capabilities` are Bastion's `Implementation` and `ClientCapabilities`
    as the wire has them."""
    info = copy.deepcopy(dict(client_info))
    offered = copy.deepcopy(dict(capabilities))
    try:
        discovered = await _discover(session, info, offered)
    except RpcError as probe:
        try:
            return await _initialize(session, info, offered)
        except RpcError as refused:
            # A server slow to start (over the probe's timeout) answers the late probe, which
            # settles it on the stateless era, and then refuses the handshake: probe again.
            if probe.code != REQUEST_TIMEOUT or refused.code != UNSUPPORTED_PROTOCOL_VERSION:
                raise
            discovered = await _discover(session, info, offered)
    supported = discovered["supportedVersions"]
    mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in supported]
    if not mutual:
        raise RuntimeError(
            f"No mutually supported modern protocol version "
            f"(server: {supported}, client: {list(MODERN_PROTOCOL_VERSIONS)})"
        )
    return UpstreamInfo(
        protocol_version=mutual[-1],
        server_info=_stamped_server_info(discovered),
        capabilities=discovered["capabilities"],
        instructions=discovered.get("instructions"),
    )


async def _discover(session: JsonRpcSession, info: dict[str, object], offered: dict[str, object]) -> dict[str, Any]:
    """The server's `DiscoverResult`, as the model dumps it."""
    try:
        raw = await _send_discover(session, LATEST_MODERN_VERSION, info, offered)
    except RpcError as exc:
        if exc.code != UNSUPPORTED_PROTOCOL_VERSION:
            raise
        try:
            data = types.UnsupportedProtocolVersionErrorData.model_validate(exc.data)
        except ValidationError:
            raise exc from None
        mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in data.supported]
        if not mutual:
            raise
        raw = await _send_discover(session, mutual[-1], info, offered)
    _clamp_ttl(raw)
    plain = handshake_shapes.discover_result(raw)
    if plain is not None:
        return plain
    model = types.DiscoverResult.model_validate(raw)
    return {"_meta": model.meta, **_dumped(model, exclude={"meta"})}


async def _send_discover(
    session: JsonRpcSession, version: str, info: dict[str, object], offered: dict[str, object]
) -> dict[str, object]:
    meta = {
        PROTOCOL_VERSION_META_KEY: version,
        CLIENT_INFO_META_KEY: info,
        CLIENT_CAPABILITIES_META_KEY: offered,
    }
    headers = {MCP_PROTOCOL_VERSION_HEADER: version, MCP_METHOD_HEADER: "server/discover"}
    return await session.request(
        "server/discover", {"_meta": meta}, time_limit=DISCOVER_TIMEOUT, headers=headers, cancellable=False
    )


async def _initialize(session: JsonRpcSession, info: dict[str, object], offered: dict[str, object]) -> UpstreamInfo:
    params = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": offered, "clientInfo": info}
    raw = await session.request("initialize", params, cancellable=False)
    result = handshake_shapes.initialize_result(raw)
    if result is None:
        result = _dumped(types.InitializeResult.model_validate(raw, by_name=False), exclude={"meta"})
    version = result["protocolVersion"]
    if version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise RuntimeError(f"Unsupported protocol version from the server: {version}")
    await session.notify("notifications/initialized", None, headers={MCP_PROTOCOL_VERSION_HEADER: version})
    return UpstreamInfo(
        protocol_version=version,
        server_info=result["serverInfo"],
        capabilities=result["capabilities"],
        instructions=result.get("instructions"),
    )


def _stamped_server_info(result: dict[str, Any]) -> dict[str, Any] | None:
    """The server's identity from the discover result's `_meta` stamp (display-only: malformed reads as absent)."""
    raw = (result.get("_meta") or {}).get(SERVER_INFO_META_KEY)
    if raw is None:
        return None
    plain = handshake_shapes.implementation(raw)
    if plain is not None:
        return plain
    try:
        return _dumped(types.Implementation.model_validate(raw))
    except ValidationError:
        return None


def _dumped(model: BaseModel, exclude: set[str] | None = None) -> dict[str, Any]:
    """`model` as the wire has it (`_meta` left out by the callers that only read it: any JSON
    may hide there, nested deeper than the serializer goes)."""
    return model.model_dump(by_alias=True, mode="json", exclude_none=True, exclude=exclude)


def _clamp_ttl(raw: dict[str, object]) -> None:
    """A negative cache TTL reads as 0 (the SDK floors it the same way before validating)."""
    ttl = raw.get("ttlMs")
    if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl < 0:
        raw["ttlMs"] = 0
