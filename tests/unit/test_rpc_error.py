"""`RpcError`, Bastion's error reply, and the SDK's `MCPError` read and converted both ways."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, METHOD_NOT_FOUND

from bastion.rpc_error import RpcError, rpc_error


@pytest.mark.parametrize(
    ("error", "reply"),
    [
        (
            RpcError(METHOD_NOT_FOUND, "Method not found", "tasks/get"),
            {"code": METHOD_NOT_FOUND, "message": "Method not found", "data": "tasks/get"},
        ),
        (RpcError(INVALID_REQUEST, "no"), {"code": INVALID_REQUEST, "message": "no"}),
    ],
)
def test_an_error_reply_has_the_sdks_shape(error: RpcError, reply: dict[str, object]) -> None:
    assert error.reply() == reply
    assert str(error) == reply["message"]
    sdk = error.as_sdk()
    assert isinstance(sdk, MCPError)
    assert (sdk.code, sdk.message, sdk.data) == (error.code, error.message, error.data)


def test_either_error_type_is_read_and_nothing_else() -> None:
    own = RpcError(INVALID_REQUEST, "refused", {"why": "audit"})
    assert rpc_error(own) is own
    read = rpc_error(MCPError(METHOD_NOT_FOUND, "Method not found", "x"))
    assert read is not None
    assert (read.code, read.message, read.data) == (METHOD_NOT_FOUND, "Method not found", "x")
    assert rpc_error(ValueError("not a reply")) is None
    assert rpc_error(KeyboardInterrupt()) is None
