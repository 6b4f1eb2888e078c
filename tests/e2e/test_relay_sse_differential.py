"""Legacy HTTP+SSE on the relay against the reference, raw: what an agent may POST to
`/messages/` (no, a malformed, an unknown or another credential's session; a body that is not a
message; requests and answers) and what the event stream carries, through the SDK path
(`BASTION_RELAY=0`) and the relay. The scripted sessions over SSE are in
`test_relay_differential.py` (`/servers/probe/sse`) and `test_relay_aggregate_differential.py` (`/sse`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import httpx2
import pytest

from bastion.front.http_app import AGGREGATE_NAME
from bastion.gateway.gateway import Gateway
from tests.e2e.test_relay_aggregate_differential import REACHED, audit_of, gateways
from tests.e2e.test_relay_differential import INIT

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]


async def sse_session(gateway: Gateway, token: str, other: str) -> list[Any]:
    """Raw legacy HTTP+SSE at `/sse`: odd and hostile POSTs, then what the stream carried."""
    base = gateway.base_url
    got: list[Any] = []
    events: list[str] = []
    endpoint: list[str] = []
    arrived = anyio.Event()
    done = anyio.Event()
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        anyio.create_task_group() as tg,
    ):

        async def listen() -> None:
            async with http.stream("GET", f"{base}/sse") as response:
                got.append(("GET", response.status_code, response.headers.get("content-type", "")[:17]))
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if not endpoint:
                        endpoint.append(data)
                        arrived.set()
                        continue
                    events.append(data)
                    if {json.loads(e).get("id") for e in events} >= ANSWERED:
                        done.set()

        tg.start_soon(listen)
        await arrived.wait()
        assert endpoint[0].startswith("/messages/?session_id=")
        mine = f"{base}{endpoint[0]}"
        ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
        posts: list[tuple[str, str, str, Any]] = [
            ("no session_id", f"{base}/messages/", token, ping),
            ("not a uuid", f"{base}/messages/?session_id=zz", token, ping),
            ("unknown session", f"{base}/messages/?session_id={uuid.uuid4().hex}", token, ping),
            ("another credential's session", mine, other, ping),
            ("not a message", mine, token, {"jsonrpc": "2.0", "id": 4}),
            ("initialize", mine, token, INIT),
            ("initialized", mine, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}),
            ("unreachable tool", mine, token, CALL_SECRET),
            ("name not a string", mine, token, {**CALL_SECRET, "id": 6, "params": {"name": 7}}),
            ("unknown method", mine, token, {"jsonrpc": "2.0", "id": 7, "method": "no/such"}),
            ("stray answer", mine, token, {"jsonrpc": "2.0", "id": 55, "result": {}}),
            ("fence", mine, token, {"jsonrpc": "2.0", "id": 99, "method": "ping"}),
        ]
        for label, url, credential, body in posts:
            headers = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
            response = await http.post(url, content=json.dumps(body), headers=headers)
            got.append((label, response.status_code, response.text))
        with anyio.fail_after(30):
            await done.wait()
        tg.cancel_scope.cancel()
    answers = sorted((json.loads(e) for e in events), key=lambda a: str(a.get("id")))  # concurrent: any order
    for answer in answers:
        if isinstance(answer.get("result"), dict) and "serverInfo" in answer["result"]:
            answer["result"]["serverInfo"].pop("version", None)
    return [*got, *answers]


ANSWERED = {1, 5, 6, 7, 99}
"""The ids of the requests the stream answers in `sse_session`."""
CALL_SECRET = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "secret__echo", "arguments": {}}}


async def test_raw_legacy_sse_at_the_aggregate_gets_what_the_sdk_path_gives(tmp_path, monkeypatch):
    """Hostile POSTs to `/messages/` (no, bad, unknown or another credential's session; not a message)
    and what the stream carries: the same on both paths, and audited the same."""
    seen: dict[str, list[Any]] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        async with gateways(tmp_path, monkeypatch, "legacy") as served:
            for name, (gateway, token) in served.items():
                assert (gateway._endpoints[AGGREGATE_NAME].relay_sse is not None) is (name == "relay")
                assert gateway.tokens is not None
                _, other = gateway.tokens.create("other", servers=REACHED)
                seen[name] = await sse_session(gateway, token, other)
                audited[name] = await audit_of(gateway)
    differences = [(sdk, relay) for sdk, relay in zip(seen["sdk"], seen["relay"], strict=False) if sdk != relay]
    assert differences == [], "\n".join(map(repr, differences))
    assert seen["relay"] == seen["sdk"], "\n".join(map(repr, [*seen["sdk"], "--", *seen["relay"]]))
    assert audited["relay"] == audited["sdk"]
    assert ("another credential's session", 404, "Could not find session") in seen["relay"]
