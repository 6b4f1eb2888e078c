"""What the front door checks in a POSTed JSON-RPC body before the SDK transport sees it.

The SDK would answer a batch or a malformed body itself, but quietly accept a request sent
as a notification (no id: nothing to answer, nothing audited) and let a second request
reuse an id in flight on the same session (its response stream replaced the first one's,
leaving the first unanswered). Here the body is read once (bounded by `max_body_bytes`),
judged, and replayed to the transport; every refusal gets a JSON-RPC error and a
`request.refused` audit event (see `refusals`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a body is refused: a reason from the fixed vocabulary, the HTTP status and a clear message."""

    reason: str
    status: int
    message: str
    code: int = INVALID_REQUEST
    request_id: Any = None


@dataclass(frozen=True, slots=True)
class Judged:
    """A body that passes: the request's id, when it is a request (`id_key`: as the SDK keys it,
    `str(id)`, so 7 and "7" are the same request to it and to us)."""

    id_key: str | None
    request_id: Any = None
    message: Any = None
    """The body, parsed (once: the relay reads it from here)."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it is longer than `limit` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away: what came is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving `body` once, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def judge(body: bytes) -> Refusal | Judged:
    """Refuse a body that is not JSON, a batch, or a request sent without an id."""
    try:
        message = orjson.loads(body)
    except ValueError:
        return Refusal("parse_error", 400, "Parse error: the body is not JSON", PARSE_ERROR)
    if isinstance(message, list):
        return Refusal("batch", 400, "JSON-RPC batches are not accepted: send one message per request")
    if not isinstance(message, dict):
        return Judged(None, message=message)  # the transport answers what is not a JSON-RPC message
    method = message.get("method")
    if isinstance(method, str) and "id" not in message and not method.startswith("notifications/"):
        what = f"{method[:64]!r} was sent as a notification (no id)"
        return Refusal("call_as_notification", 400, f"{what}: a request needs an id; it was not forwarded")
    if isinstance(method, str) and "id" in message:
        request_id = message["id"]
        if isinstance(request_id, str | int) and not isinstance(request_id, bool):
            return Judged(str(request_id), request_id, message)
    return Judged(None, message=message)


def duplicate_id(request_id: Any) -> Refusal:
    message = (
        f"a request with id {json.dumps(request_id)[:80]} is already in flight on this session: "
        "use a new id for each request (the first one is still being answered)"
    )
    return Refusal("duplicate_id", 409, message, INVALID_REQUEST, request_id)


def too_large(limit: int) -> Refusal:
    return Refusal("body_too_large", 413, f"the request body is over the limit of {limit} bytes")


def json_rpc_error(refusal: Refusal) -> Response:
    body = {"jsonrpc": "2.0", "id": refusal.request_id, "error": {"code": refusal.code, "message": refusal.message}}
    return Response(json.dumps(body), refusal.status, media_type="application/json")


def sdk_refusal_reason(status: int) -> str:
    """The reason recorded for a 4xx the SDK transport answered itself."""
    return {400: "invalid_message", 404: "unknown_session", 413: "body_too_large"}.get(status, f"http_{status}")
