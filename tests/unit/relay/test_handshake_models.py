"""The relay answers `initialize` with the protocol-wide models only (`relay.handshake`).

The SDK's server checks an `initialize` request with the 2025-11-25 era's models, then with the
protocol-wide ones, and shapes its answer with the era's again (`mcp_types.methods`). Loading the
era models (both eras, a third of what a `bastion wrap` imports before it answers) for that
changes nothing, as long as two facts hold for the SDK installed; these properties check them
over requests and server identities near the valid shapes (and off them, one field at a time),
so an SDK whose era models drift from the protocol-wide ones fails here:

- a request the protocol-wide `InitializeRequestParams` accepts, the era's `initialize` accepts;
- an answer built from protocol-wide models (as `handshake` builds it from any upstream's
  validated `InitializeResult`, less `tasks` and `extensions`) is what the era's shaping returns.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_types import methods as spec_methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import ValidationError

from bastion.proxy.identity import InitializationOptions
from bastion.relay.relay import handshake
from tests.unit.handshake_values import REQUEST, UPSTREAM_RESULT

_RUNS = settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _accepts(check: Any) -> bool:
    try:
        check()
    except ValidationError:
        return False
    return True


def _protocol_wide_accepts(params: Any) -> bool:
    return _accepts(lambda: types.InitializeRequestParams.model_validate(params or {}, by_name=False))


@_RUNS
@given(REQUEST)
def test_the_protocol_wide_model_accepts_no_initialize_the_era_refuses(params: Any) -> None:
    protocol_wide = _protocol_wide_accepts(params)
    era = _accepts(lambda: spec_methods.validate_client_request("initialize", LATEST_HANDSHAKE_VERSION, params))
    assert era or not protocol_wide


@_RUNS
@given(UPSTREAM_RESULT, st.sampled_from(HANDSHAKE_PROTOCOL_VERSIONS))
def test_the_handshake_answer_is_what_the_era_shapes(raw: dict[str, Any], version: str) -> None:
    try:
        upstream = types.InitializeResult.model_validate(raw, by_name=False)
    except ValidationError:
        return  # the upstream client refuses it: no answer is built from it
    offered = upstream.capabilities.model_copy(deep=True, update={"tasks": None, "extensions": None})
    served = _Identity(offered, upstream.server_info, upstream.instructions)
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "agent", "version": "1"}}
    answer = anyio.run(handshake, _Flow(params), served)  # type: ignore[arg-type]
    assert spec_methods.serialize_server_result("initialize", version, answer) == answer
    # Built without the models, the answer is what `InitializeResult` dumps, key for key and in order.
    model = types.InitializeResult(
        protocol_version=version,
        capabilities=offered,
        server_info=upstream.server_info,
        instructions=served.instructions,
    )
    assert json.dumps(answer) == json.dumps(model.model_dump(by_alias=True, mode="json", exclude_none=True))


def test_the_properties_saw_both_sides() -> None:
    """The strategies reach accepted and refused requests alike (else the first property proves nothing)."""
    seen: set[bool] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(REQUEST)
    def look(params: Any) -> None:
        seen.add(_protocol_wide_accepts(params))

    look()
    assert seen == {True, False}


class _Identity:
    """A served server's identity, as `ServedIdentity` gives it to `handshake`."""

    def __init__(
        self, capabilities: types.ServerCapabilities, info: types.Implementation, instructions: str | None = None
    ) -> None:
        self.capabilities = capabilities
        self.info = info
        self.instructions = instructions

    def create_initialization_options(self) -> InitializationOptions:
        return InitializationOptions(
            server_name=self.info.name,
            server_version=self.info.version,
            capabilities=self.capabilities.model_dump(by_alias=True, mode="json", exclude_none=True),
            title=self.info.title,
            description=self.info.description,
            instructions=self.instructions,
            website_url=self.info.website_url,
            icons=self.info.icons,
        )


_FILES = types.Implementation(
    name="files", version="1.2", title="Files", icons=[types.Icon(src="https://x/i.png", sizes=["48x48"])]
)


class _Flow:
    def __init__(self, params: Any) -> None:
        self.params = params

        class _Sessions:
            session = None

        self.session = _Sessions()


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["2025-06-18", "2024-11-05", "2031-01-01"])
async def test_handshake_answers_as_the_era_shapes_it(version: str) -> None:
    capabilities = types.ServerCapabilities(
        tools=types.ToolsCapability(list_changed=True), experimental={"x": {"on": True}}
    )
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "agent", "version": "1"}}
    answer = await handshake(_Flow(params), _Identity(capabilities, _FILES, "read them"))  # type: ignore[arg-type]
    negotiated = version if version in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    assert answer["protocolVersion"] == negotiated
    assert answer == spec_methods.serialize_server_result("initialize", negotiated, answer)
    assert answer["serverInfo"] == {
        "name": "files",
        "title": "Files",
        "version": "1.2",
        "icons": [{"src": "https://x/i.png", "sizes": ["48x48"]}],
    }


@pytest.mark.anyio
@pytest.mark.parametrize("params", [None, [], "x", {"protocolVersion": "2025-06-18"}, {"capabilities": {}}])
async def test_handshake_refuses_what_the_era_refuses(params: Any) -> None:
    with pytest.raises(ValidationError):
        spec_methods.validate_client_request("initialize", LATEST_HANDSHAKE_VERSION, params)
    with pytest.raises(ValidationError):
        await handshake(_Flow(params), _Identity(types.ServerCapabilities(), _FILES))  # type: ignore[arg-type]
