"""Opening a session, on Bastion's own JSON-RPC session: the newest era the server speaks.

`server/discover` (2026-07-28) first, retried once at a version both sides know when the
server names its own; a server that refuses it gets the handshake (`initialize`, then
`notifications/initialized`). The results are read with the SDK's models: off the hot
path, and exactly what the SDK's `ClientSession.discover()` / `initialize()` accept.
"""

from __future__ import annotations

from dataclasses import dataclass

import mcp_types as types
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import ValidationError

from bastion.mcp_names import MCP_METHOD_HEADER, MCP_PROTOCOL_VERSION_HEADER
from bastion.rpc_error import RpcError
from bastion.upstream.jsonrpc_session import JsonRpcSession

__all__ = ["UpstreamInfo", "negotiate"]

DISCOVER_TIMEOUT = 10.0
"""How long a `server/discover` probe may wait before the handshake is tried (the SDK's figure)."""


@dataclass(frozen=True, slots=True)
class UpstreamInfo:
    """What the upstream said about itself in the handshake."""

    protocol_version: str
    server_info: types.Implementation | None
    capabilities: types.ServerCapabilities
    instructions: str | None


async def negotiate(
    session: JsonRpcSession, client_info: types.Implementation, capabilities: types.ClientCapabilities
) -> UpstreamInfo:
    """Speak the newest era the server offers: `server/discover` first, else the handshake."""
    info = client_info.model_dump(by_alias=True, mode="json", exclude_none=True)
    offered = capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
    try:
        discovered = await _discover(session, info, offered)
    except RpcError as probe:
        try:
            return await _initialize(session, info, offered)
        except RpcError as refused:
            # A server slow to start (over the probe's timeout) answers the late probe, which
            # settles it on the stateless era, and then refuses the handshake: probe again.
            if probe.code != types.REQUEST_TIMEOUT or refused.code != types.UNSUPPORTED_PROTOCOL_VERSION:
                raise
            discovered = await _discover(session, info, offered)
    mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in discovered.supported_versions]
    if not mutual:
        raise RuntimeError(
            f"No mutually supported modern protocol version "
            f"(server: {discovered.supported_versions}, client: {list(MODERN_PROTOCOL_VERSIONS)})"
        )
    return UpstreamInfo(
        protocol_version=mutual[-1],
        server_info=_stamped_server_info(discovered),
        capabilities=discovered.capabilities,
        instructions=discovered.instructions,
    )


async def _discover(
    session: JsonRpcSession, info: dict[str, object], offered: dict[str, object]
) -> types.DiscoverResult:
    try:
        raw = await _send_discover(session, LATEST_MODERN_VERSION, info, offered)
    except RpcError as exc:
        if exc.code != types.UNSUPPORTED_PROTOCOL_VERSION:
            raise
        try:
            data = types.UnsupportedProtocolVersionErrorData.model_validate(exc.error.data)
        except ValidationError:
            raise exc from None
        mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in data.supported]
        if not mutual:
            raise
        raw = await _send_discover(session, mutual[-1], info, offered)
    _clamp_ttl(raw)
    return types.DiscoverResult.model_validate(raw)


async def _send_discover(
    session: JsonRpcSession, version: str, info: dict[str, object], offered: dict[str, object]
) -> dict[str, object]:
    meta = {
        types.PROTOCOL_VERSION_META_KEY: version,
        types.CLIENT_INFO_META_KEY: info,
        types.CLIENT_CAPABILITIES_META_KEY: offered,
    }
    headers = {MCP_PROTOCOL_VERSION_HEADER: version, MCP_METHOD_HEADER: "server/discover"}
    return await session.request(
        "server/discover", {"_meta": meta}, time_limit=DISCOVER_TIMEOUT, headers=headers, cancellable=False
    )


async def _initialize(session: JsonRpcSession, info: dict[str, object], offered: dict[str, object]) -> UpstreamInfo:
    params = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": offered, "clientInfo": info}
    raw = await session.request("initialize", params, cancellable=False)
    result = types.InitializeResult.model_validate(raw, by_name=False)
    if result.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise RuntimeError(f"Unsupported protocol version from the server: {result.protocol_version}")
    await session.notify(
        "notifications/initialized", None, headers={MCP_PROTOCOL_VERSION_HEADER: result.protocol_version}
    )
    return UpstreamInfo(
        protocol_version=result.protocol_version,
        server_info=result.server_info,
        capabilities=result.capabilities,
        instructions=result.instructions,
    )


def _stamped_server_info(result: types.DiscoverResult) -> types.Implementation | None:
    """The server's identity from the discover result's `_meta` stamp (display-only: malformed reads as absent)."""
    raw = (result.meta or {}).get(types.SERVER_INFO_META_KEY)
    if raw is None:
        return None
    try:
        return types.Implementation.model_validate(raw)
    except ValidationError:
        return None


def _clamp_ttl(raw: dict[str, object]) -> None:
    """A negative cache TTL reads as 0 (the SDK floors it the same way before validating)."""
    ttl = raw.get("ttlMs")
    if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl < 0:
        raw["ttlMs"] = 0
