"""The 2026-07-28 request envelope over stdio: which era a request claims, and whether its envelope holds.

A request of the era carries its protocol version, capabilities and (optionally) client
info in `params._meta` (`io.modelcontextprotocol/...` keys). Over stdio there are no
headers to compare, so the checks are the SDK's ladder without its header rung
(`mcp.shared.inbound.classify_inbound_request(body)`), with its codes and messages; they
are written here because importing that module loads the SDK's whole server stack, which
the relay leaves unloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.mcp_names import (
    CLIENT_CAPABILITIES_META_KEY,
    MODERN_PROTOCOL_VERSIONS,
    PROTOCOL_VERSION_META_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from bastion.relay import jsonrpc

HANDSHAKE_ENVELOPE_REFUSED = (
    "this connection serves the handshake protocol era; "
    "requests carrying the 2026-07-28 envelope are not accepted on it"
)
"""The refusal of an enveloped request on a handshake-era connection (INVALID_REQUEST, the SDK's words)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a 2026-era request is refused before it is served: a JSON-RPC error (never recorded)."""

    code: int
    message: str
    data: Any = None

    def error_bytes(self, request_id: jsonrpc.RequestId) -> bytes:
        return jsonrpc.error_bytes(request_id, self.code, self.message, self.data)


def carries_envelope(params: Mapping[str, Any] | None) -> bool:
    """Whether `params._meta` names a protocol version: the mark of a 2026-era request (as the SDK reads it)."""
    meta = params.get("_meta") if params else None
    return isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta


def served_version(method: str, params: Mapping[str, Any] | None) -> str | Rejection:
    """The protocol version a request on a 2026-era connection is served at, or why it is refused.

    `initialize` has no place in the era (UNSUPPORTED_PROTOCOL_VERSION, naming the versions
    served); otherwise the envelope must hold the version and capabilities keys
    (INVALID_PARAMS) and a version served here (UNSUPPORTED_PROTOCOL_VERSION)."""
    if method == "initialize":
        requested = (params or {}).get("protocolVersion")
        data: dict[str, Any] = {"supported": list(MODERN_PROTOCOL_VERSIONS)}
        if isinstance(requested, str):
            data["requested"] = requested
        message = "connection is serving the 2026-07-28 protocol; the initialize handshake is not accepted"
        return Rejection(UNSUPPORTED_PROTOCOL_VERSION, message, data)
    meta = params.get("_meta") if params is not None else None
    if not isinstance(meta, Mapping):
        return Rejection(
            jsonrpc.INVALID_PARAMS,
            "params._meta must be an object carrying the required "
            f"{PROTOCOL_VERSION_META_KEY!r} and {CLIENT_CAPABILITIES_META_KEY!r} envelope keys",
        )
    missing = [key for key in (PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY) if key not in meta]
    if missing:
        return Rejection(
            jsonrpc.INVALID_PARAMS,
            f"params._meta is missing the required envelope key(s): {', '.join(missing)}",
        )
    version = meta[PROTOCOL_VERSION_META_KEY]
    if not isinstance(version, str):
        return Rejection(jsonrpc.INVALID_PARAMS, "the protocol-version envelope value must be a string")
    if version not in MODERN_PROTOCOL_VERSIONS:
        data = {"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": version}
        return Rejection(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", data)
    return version
