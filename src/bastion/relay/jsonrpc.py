"""JSON-RPC 2.0 messages as the relay sees them: parsed once with orjson, checked minimally and strictly.

Nothing here builds a pydantic model: a message is a dict read once into one of three
small records (`Request`, `Notification`, `Response`), and a reply is written once as
bytes. What is not a well-formed JSON-RPC message is refused with the error the SDK's
transport gives for it (`Invalid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_CANCELLED = -32800
"""Answers a request the agent cancelled, on the handshake-era wire (as the SDK's transport does)."""

RequestId = str | int


class Invalid(ValueError):
    """Not a JSON-RPC 2.0 message (a validation error on the SDK's side)."""


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Response:
    """A reply the agent sends to a server-to-client request: `result`, or `error`."""

    id: RequestId
    result: dict[str, Any] | None
    error: dict[str, Any] | None


Message = Request | Notification | Response


def loads(body: bytes | str) -> Any:
    """The JSON value of `body`; `ValueError` when it is not JSON."""
    return orjson.loads(body)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def classify(raw: Any) -> Message:
    """The message `raw` (a parsed JSON value) is; `Invalid` when it is none."""
    if not isinstance(raw, dict):
        raise Invalid("a JSON-RPC message is an object")
    if raw.get("jsonrpc") != "2.0":
        raise Invalid("jsonrpc must be '2.0'")
    params = raw.get("params")
    if "method" in raw:
        method = raw["method"]
        if not isinstance(method, str):
            raise Invalid("method must be a string")
        if params is not None and not isinstance(params, dict):
            raise Invalid("params must be an object")
        request_id = raw.get("id")
        if "id" not in raw or not _is_request_id(request_id):
            # An id that is neither a string nor an integer makes it a notification to the SDK's
            # reader (its union falls through to that shape): nothing is answered.
            return Notification(method, params)
        return Request(cast("RequestId", request_id), method, params)
    if "id" not in raw:
        raise Invalid("a message needs a method (a request or a notification) or an id (a response)")
    request_id = _request_id(raw["id"])
    if "result" in raw:
        result = raw["result"]
        if not isinstance(result, dict):
            raise Invalid("result must be an object")
        return Response(request_id, result, None)
    error = raw.get("error")
    if not isinstance(error, dict) or not _is_int(error.get("code")) or not isinstance(error.get("message"), str):
        raise Invalid("error must be an object with an integer code and a message")
    return Response(request_id, None, error)


def _request_id(value: Any) -> RequestId:
    if _is_request_id(value):
        return cast("RequestId", value)
    raise Invalid("id must be a string or an integer")


def _is_request_id(value: Any) -> bool:
    return isinstance(value, str) or _is_int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def result_bytes(request_id: RequestId, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_bytes(request_id: RequestId | None, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def notification_bytes(method: str, params: dict[str, Any] | None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message)


def progress_bytes(token: str | int, progress: float, total: float | None, message: str | None) -> bytes:
    """A `notifications/progress` for `token`, with `total` and `message` when given."""
    params: dict[str, Any] = {"progressToken": token, "progress": progress}
    if total is not None:
        params["total"] = total
    if message is not None:
        params["message"] = message
    return notification_bytes("notifications/progress", params)


def request_bytes(request_id: RequestId, method: str, params: dict[str, Any] | None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message)
