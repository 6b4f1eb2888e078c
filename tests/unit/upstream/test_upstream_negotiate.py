"""Negotiating an upstream's protocol era: a server slower to start than the SDK's probe timeout
answers the late `server/discover`, which settles it on the stateless era; it then refuses the
handshake, and Bastion probes again instead of failing the start."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST, METHOD_NOT_FOUND, REQUEST_TIMEOUT, UNSUPPORTED_PROTOCOL_VERSION

from bastion.upstream.upstream_sdk import _negotiate

DISCOVERED = types.DiscoverResult.model_validate(
    {"supportedVersions": ["2026-07-28"], "capabilities": {}, "serverInfo": {"name": "slow", "version": "1"}}
)


class Session:
    """Answers `discover` and `initialize` from scripts: an exception is raised, a result returned."""

    protocol_version = "2026-07-28"
    server_info = None

    def __init__(self, discover: list[Any], initialize: list[Any]) -> None:
        self.scripts = {"discover": discover, "initialize": initialize}

    def _next(self, method: str) -> Any:
        answer = self.scripts[method].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def discover(self) -> Any:
        return self._next("discover")

    async def initialize(self) -> Any:
        return self._next("initialize")


@pytest.mark.anyio
async def test_a_late_probe_then_a_refused_handshake_is_probed_again() -> None:
    session = Session(
        [MCPError(REQUEST_TIMEOUT, "Request 'server/discover' timed out"), DISCOVERED],
        [MCPError(UNSUPPORTED_PROTOCOL_VERSION, "the initialize handshake is not accepted")],
    )
    info = await _negotiate(session)  # type: ignore[arg-type]
    assert info.protocol_version == "2026-07-28"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("probe", "refused"),
    [(METHOD_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION), (REQUEST_TIMEOUT, INVALID_REQUEST)],
    ids=["legacy-server-refusing", "timeout-then-other-refusal"],
)
async def test_other_refusals_still_fail(probe: int, refused: int) -> None:
    session = Session([MCPError(probe, "no"), DISCOVERED], [MCPError(refused, "no")])
    with pytest.raises(MCPError):
        await _negotiate(session)  # type: ignore[arg-type]
