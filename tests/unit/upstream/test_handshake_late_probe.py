"""Opening a session on Bastion's own JSON-RPC session with a server slower to start than the
probe's timeout: it answers the late `server/discover`, which settles it on the stateless era,
then refuses the handshake; Bastion probes again instead of failing the start."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp_types import INVALID_REQUEST, METHOD_NOT_FOUND, REQUEST_TIMEOUT, UNSUPPORTED_PROTOCOL_VERSION

from bastion.rpc_error import RpcError
from bastion.upstream.handshake import negotiate

DISCOVERED = {"supportedVersions": ["2026-07-28"], "capabilities": {}, "resultType": "complete"}
CLIENT = types.Implementation(name="bastion", version="0")


class ScriptedSession:
    """Answers `server/discover` and `initialize` from scripts: an exception is raised, a result returned."""

    def __init__(self, discover: list[Any], initialize: list[Any]) -> None:
        self.scripts = {"server/discover": discover, "initialize": initialize}
        self.notified: list[str] = []

    async def request(self, method: str, params: Any, **_: Any) -> Any:
        answer = self.scripts[method].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return dict(answer)

    async def notify(self, method: str, params: Any, **_: Any) -> None:
        self.notified.append(method)


@pytest.mark.anyio
async def test_a_late_probe_then_a_refused_handshake_is_probed_again() -> None:
    session = ScriptedSession(
        [RpcError(REQUEST_TIMEOUT, "Request 'server/discover' timed out"), DISCOVERED],
        [RpcError(UNSUPPORTED_PROTOCOL_VERSION, "the initialize handshake is not accepted")],
    )
    info = await negotiate(session, CLIENT, types.ClientCapabilities())  # type: ignore[arg-type]
    assert info.protocol_version == "2026-07-28"
    assert session.notified == []  # no `initialized` for a handshake that never happened


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("probe", "refused"),
    [(METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION), (REQUEST_TIMEOUT, INVALID_REQUEST)],
    ids=["legacy-server-refusing", "timeout-then-other-refusal"],
)
async def test_other_refusals_still_fail(probe: int, refused: int) -> None:
    session = ScriptedSession([RpcError(probe, "no"), DISCOVERED], [RpcError(refused, "no")])
    with pytest.raises(RpcError):
        await negotiate(session, CLIENT, types.ClientCapabilities())  # type: ignore[arg-type]
