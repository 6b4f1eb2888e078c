"""DNS rebinding: a page on another site cannot reach the gateway through the agent's browser.

Every MCP front door (the relay's Streamable HTTP, `/mcp`, legacy SSE and its POST endpoint)
checks the `Host` and `Origin` headers itself (`relay/host_checks.py`, Bastion's own since the
SDK left the idle path): a Host the gateway does not answer to is 421, an Origin it does not
trust is 403, before any message is read, with a valid credential."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.security.front_door import FrontDoor, front_door

pytestmark = pytest.mark.e2e

PING = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
POSTS = ["/servers/time/mcp", "/mcp", "/servers/time/messages/?session_id=0", "/messages/?session_id=0"]
GETS = ["/servers/time/sse", "/sse"]
HOSTILE_HOSTS = ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil.example:1"]
HOSTILE_ORIGINS = ["http://evil.example", "https://127.0.0.1.evil.example", "null"]


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    with front_door(tmp_path_factory.mktemp("rebinding")) as opened:
        yield opened


def send(door: FrontDoor, method: str, path: str, headers: dict[str, str]) -> httpx2.Response:
    agent = door.credentials["agent"]
    assert agent is not None
    base = {"Authorization": agent, "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    body = PING if method == "POST" else None
    with (
        httpx2.Client(base_url=door.base_url, timeout=20) as http,
        http.stream(method, path, content=body, headers={**base, **headers}) as response,
    ):
        if response.status_code == 200 and method == "GET":
            return response  # an event stream: the head says enough, the body never ends
        response.read()
        return response


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
@pytest.mark.parametrize(("method", "path"), [("POST", p) for p in POSTS] + [("GET", p) for p in GETS])
def test_a_host_the_gateway_does_not_answer_to_is_refused(door: FrontDoor, method: str, path: str, host: str) -> None:
    response = send(door, method, path, {"Host": host})
    assert (response.status_code, response.text) == (421, "Invalid Host header")


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS)
@pytest.mark.parametrize(("method", "path"), [("POST", p) for p in POSTS] + [("GET", p) for p in GETS])
def test_an_origin_the_gateway_does_not_trust_is_refused(door: FrontDoor, method: str, path: str, origin: str) -> None:
    response = send(door, method, path, {"Origin": origin})
    assert (response.status_code, response.text) == (403, "Invalid Origin header")


@pytest.mark.parametrize("path", POSTS)
def test_the_gateways_own_host_and_origin_pass_the_check(door: FrontDoor, path: str) -> None:
    response = send(door, "POST", path, {"Origin": door.base_url})
    assert response.status_code not in (421, 403), response.text
