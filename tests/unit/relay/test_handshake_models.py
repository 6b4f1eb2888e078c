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

_ODD = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.just(1.5), st.just([]), st.just({}), st.just("x"))


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid`, or one time in 25 a value of another JSON type (so both sides of each check are seen)."""
    return st.integers(0, 24).flatmap(lambda pick: _ODD if pick == 0 else valid)


_TEXT = st.text(max_size=3)
_URL = st.sampled_from(["https://x/i.png", "http://x", "data:image/png;base64,AA==", "x", "", "ftp://x"])
_ICON = st.fixed_dictionaries(
    {"src": _mostly(_URL)},
    optional={
        "mimeType": _mostly(_TEXT),
        "sizes": _mostly(st.lists(_mostly(st.sampled_from(["48x48", "any", "x"])), max_size=2)),
        "theme": _mostly(st.sampled_from(["light", "dark", "x"])),
        "extra": _ODD,
    },
)
_IMPLEMENTATION = st.fixed_dictionaries(
    {"name": _mostly(_TEXT), "version": _mostly(_TEXT)},
    optional={
        "title": _mostly(_TEXT),
        "description": _mostly(_TEXT),
        "websiteUrl": _mostly(_URL),
        "icons": _mostly(st.lists(_mostly(_ICON), max_size=2)),
        "extra": _ODD,
    },
)
_FLAG = _mostly(st.booleans())
_PART = st.fixed_dictionaries(
    {},
    optional={
        "listChanged": _FLAG,
        "subscribe": _FLAG,
        "context": _mostly(st.just({})),
        "tools": _mostly(st.just({})),
        "form": _mostly(st.fixed_dictionaries({}, optional={"applyDefaults": _FLAG})),
        "url": _mostly(st.just({})),
        "x": _ODD,
    },
)
_OPEN = st.dictionaries(_TEXT, _mostly(st.dictionaries(_TEXT, _ODD, max_size=2)), max_size=2)
_META = st.fixed_dictionaries({}, optional={"progressToken": _mostly(_TEXT | st.integers()), "io.x/k": _ODD})
_CLIENT_CAPABILITIES = st.fixed_dictionaries(
    {},
    optional={
        name: _mostly(_OPEN if name in ("experimental", "extensions", "tasks") else _PART)
        for name in ("experimental", "sampling", "elicitation", "roots", "extensions", "tasks")
    }
    | {"other": _ODD},
)
_SERVER_CAPABILITIES = st.fixed_dictionaries(
    {},
    optional={
        name: _mostly(_OPEN if name in ("experimental", "logging", "completions", "extensions", "tasks") else _PART)
        for name in ("experimental", "logging", "completions", "prompts", "resources", "tools", "extensions", "tasks")
    }
    | {"other": _ODD},
)
_VERSION = st.sampled_from([*HANDSHAKE_PROTOCOL_VERSIONS, "1999-01-01"])
_REQUEST = st.one_of(
    st.fixed_dictionaries(
        {
            "protocolVersion": _mostly(_VERSION),
            "capabilities": _mostly(_CLIENT_CAPABILITIES),
            "clientInfo": _mostly(_IMPLEMENTATION),
        },
        optional={"_meta": _mostly(_META), "other": _ODD},
    ),
    _ODD,
)
_UPSTREAM_RESULT = st.fixed_dictionaries(
    {
        "protocolVersion": _mostly(_VERSION),
        "capabilities": _mostly(_SERVER_CAPABILITIES),
        "serverInfo": _mostly(_IMPLEMENTATION),
    },
    optional={"instructions": _mostly(_TEXT), "_meta": _mostly(_META), "other": _ODD},
)
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
@given(_REQUEST)
def test_the_protocol_wide_model_accepts_no_initialize_the_era_refuses(params: Any) -> None:
    protocol_wide = _protocol_wide_accepts(params)
    era = _accepts(lambda: spec_methods.validate_client_request("initialize", LATEST_HANDSHAKE_VERSION, params))
    assert era or not protocol_wide


@_RUNS
@given(_UPSTREAM_RESULT, st.sampled_from(HANDSHAKE_PROTOCOL_VERSIONS))
def test_the_handshake_answer_is_what_the_era_shapes(raw: dict[str, Any], version: str) -> None:
    try:
        upstream = types.InitializeResult.model_validate(raw, by_name=False)
    except ValidationError:
        return  # the upstream client refuses it: no answer is built from it
    served = _Identity(
        upstream.capabilities.model_copy(deep=True, update={"tasks": None, "extensions": None}),
        upstream.server_info,
        upstream.instructions,
    )
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "agent", "version": "1"}}
    answer = anyio.run(handshake, _Flow(params), served)  # type: ignore[arg-type]
    assert spec_methods.serialize_server_result("initialize", version, answer) == answer


def test_the_properties_saw_both_sides() -> None:
    """The strategies reach accepted and refused requests alike (else the first property proves nothing)."""
    seen: set[bool] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(_REQUEST)
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
            capabilities=self.capabilities,
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
