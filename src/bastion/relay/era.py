"""What the SDK's server checks of a request by its protocol era and its session's state, for the relay.

`Relay` and `AggregateRelay` apply these where the SDK's `ServerRunner` does, so the answers
and the audit records are the reference path's:

- a spec method the request's era does not define is METHOD_NOT_FOUND (`refuse_undefined`):
  in 2026-07-28, `ping`, `logging/setLevel` and resource subscriptions; one it defines but
  Bastion does not serve (`subscriptions/listen`) has its params checked first, then is
  METHOD_NOT_FOUND too (`refuse_unserved`);
- `server/discover` (2026-07-28) is answered from the served server's identity and
  capabilities, as the SDK's built-in handler answers it (`discover`);
- on a handshake-era session, a request other than `initialize` and `ping` sent before the
  handshake (a successful `initialize`, or `notifications/initialized`) is refused with
  INVALID_PARAMS (`refuse_before_handshake`), as the SDK's init gate refuses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn

from bastion.lazy_import import lazy_module
from bastion.mcp_names import LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from bastion.relay import jsonrpc
from bastion.relay.flow import Flow
from bastion.rpc_error import RpcError

if TYPE_CHECKING:
    import mcp_types as types
    from mcp_types import methods as spec_methods

    from bastion.proxy.identity import ServedIdentity
else:  # both eras' models: loaded by the first 2026-era request or unserved spec method, not by the handshake
    types = lazy_module("mcp_types")
    spec_methods = lazy_module("mcp_types.methods")

DISCOVER = "server/discover"


def is_modern(flow: Flow) -> bool:
    """Whether `flow`'s request is of the 2026-07-28 era (self-contained, no session)."""
    return flow.protocol_version in MODERN_PROTOCOL_VERSIONS


def refuse_undefined(flow: Flow) -> None:
    """METHOD_NOT_FOUND for a spec method `flow`'s era (2026-07-28) does not define, before its params are read."""
    method = flow.method
    if (
        is_modern(flow)
        and method in spec_methods.SPEC_CLIENT_METHODS
        and (method, flow.protocol_version) not in spec_methods.CLIENT_REQUESTS
    ):
        raise RpcError(jsonrpc.METHOD_NOT_FOUND, "Method not found", method)


def refuse_unserved(flow: Flow) -> NoReturn:
    """METHOD_NOT_FOUND for a request not served here; a spec request's params are validated first
    (a `ValidationError`: INVALID_PARAMS), as the SDK's server validates them before looking for a handler."""
    method = flow.method
    if method in spec_methods.SPEC_CLIENT_METHODS:
        with contextlib.suppress(KeyError):  # not of the era: not found
            spec_methods.validate_client_request(method, flow.protocol_version or LATEST_HANDSHAKE_VERSION, flow.params)
    raise RpcError(jsonrpc.METHOD_NOT_FOUND, "Method not found", method)


def refuse_before_handshake(flow: Flow) -> None:
    """INVALID_PARAMS for a request on a handshake-era session that has not completed the handshake."""
    session = flow.session.session
    if session is not None and not session.initialize_accepted:
        raise RpcError(jsonrpc.INVALID_PARAMS, "Invalid request parameters", "")


async def discover(
    flow: Flow, server: ServedIdentity, ready: Callable[[], Awaitable[None]] | None = None
) -> dict[str, Any]:
    """`server/discover` answered as the SDK's server answers it: the versions served, the
    server's capabilities at the request's version (once `ready` has run) and instructions."""
    if ready is not None:
        await ready()
    version = flow.protocol_version
    spec_methods.validate_client_request(DISCOVER, version, flow.params)
    result = types.DiscoverResult(
        supported_versions=list(MODERN_PROTOCOL_VERSIONS),
        capabilities=server.get_capabilities(protocol_version=version),
        instructions=server.instructions,
    )
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return spec_methods.serialize_server_result(DISCOVER, version, dumped)
