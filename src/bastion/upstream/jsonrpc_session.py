"""A JSON-RPC client session over one `Wire`: Bastion's own request ids, replies routed by id.

Every outbound request gets an id minted here (agents' ids never reach the server); its
reply is handed to the task waiting on that id and to no other. A reply nobody waits for
(an unknown id, a second reply, one that arrives after its request gave up) is dropped and
logged. Progress notifications go to the `on_progress` of the request whose id they carry
as token; `notifications/cancelled` from the server stops the handler of its request;
other notifications and server-to-client requests go to the handlers given.

When the connection ends every waiter fails at once with CONNECTION_CLOSED; a waiter that
is cancelled (its agent went away) or times out sends `notifications/cancelled` with the
id it was sent under. Failure modes and error codes follow the MCP SDK's dispatcher
(`mcp.shared.jsonrpc_dispatcher`), the reference the differential tests compare against.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from pydantic import ValidationError

from bastion.mcp_names import CONNECTION_CLOSED, INTERNAL_ERROR, INVALID_PARAMS, REQUEST_TIMEOUT
from bastion.rpc_error import RpcError, rpc_error
from bastion.upstream.json_codec import dumps
from bastion.upstream.wire import ConnectionLost, RequestId, Wire

__all__ = ["JsonRpcSession", "NotificationHandler", "ProgressHandler", "ServerRequestHandler"]

logger = logging.getLogger(__name__)

ServerRequestHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
NotificationHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
ProgressHandler = Callable[[float, float | None, str | None], Awaitable[None]]

_PROGRESS_DRAIN_TIMEOUT = 5.0
"""How long a reply waits for its request's earlier progress to be handed on (a stalled agent must not hold it)."""

_CANCEL_WRITE_TIMEOUT = 5.0
"""Bound on sending `notifications/cancelled` for an abandoned request (a wedged pipe must not hang it)."""


class _Waiter:
    """One request awaiting its reply, and the progress it has been sent but not yet handed on."""

    __slots__ = ("done", "error", "on_progress", "progress", "progress_sent", "result")

    def __init__(self, on_progress: ProgressHandler | None) -> None:
        self.done = asyncio.Event()  # anyio's wraps this one, at twice the cost a call
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.on_progress = on_progress
        self.progress: deque[tuple[float, float | None, str | None]] = deque()
        self.progress_sent: anyio.Event | None = None
        """Set when the progress received so far has been handed on (None: none received)."""

    def settle(self, result: dict[str, Any] | None, error: dict[str, Any] | None) -> bool:
        if self.done.is_set():
            return False
        self.result, self.error = result, error
        self.done.set()
        return True


_CLOSED = {"code": CONNECTION_CLOSED, "message": "Connection closed"}


class JsonRpcSession:
    """The client end of one JSON-RPC connection to an MCP server."""

    def __init__(
        self,
        wire: Wire,
        *,
        name: str,
        on_request: ServerRequestHandler,
        on_notification: NotificationHandler,
    ) -> None:
        self.name = name
        self._wire = wire
        wire.attach(self)
        self._on_request = on_request
        self._on_notification = on_notification
        self._pending: dict[RequestId, _Waiter] = {}
        self._serving: dict[RequestId, anyio.CancelScope] = {}
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self.closed = anyio.Event()
        """Set when the connection has ended (every waiter has then failed with CONNECTION_CLOSED)."""
        self.failure: BaseException | None = None
        """Why the connection failed, when it did not just close."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JsonRpcSession]:
        """Read from the wire until the connection ends or the context exits."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._read)
            try:
                yield self
            finally:
                self._close(None)
                tg.cancel_scope.cancel()
                self._tg = None

    async def _read(self) -> None:
        try:
            await self._wire.run()
        except ConnectionLost as exc:
            self._close(exc)
        except Exception as exc:
            logger.debug("upstream %s: reading failed: %r", self.name, exc)
            self._close(exc)
        else:
            self._close(None)

    def _close(self, failure: BaseException | None) -> None:
        if self.closed.is_set():
            return
        self.failure = failure
        self.closed.set()
        for waiter in self._pending.values():
            waiter.settle(None, _CLOSED)

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        time_limit: float | None = None,
        on_progress: ProgressHandler | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: RequestId | None = None,
        cancellable: bool = True,
    ) -> dict[str, Any]:
        """Send a request and return its result. Raises `RpcError` for an error reply, REQUEST_TIMEOUT
        after `time_limit` seconds, CONNECTION_CLOSED when the connection ends first."""
        if self.closed.is_set():
            raise RpcError(CONNECTION_CLOSED, "Connection closed")
        if request_id is None:
            request_id = next(self._ids)
        elif request_id in self._pending:
            raise ValueError(f"request id {request_id!r} is already in flight")
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if on_progress is not None:
            params = dict(params or {})
            params["_meta"] = {**(params.get("_meta") or {}), "progressToken": request_id}
        if params:
            message["params"] = params
        payload = dumps(message)
        waiter = _Waiter(on_progress)
        self._pending[request_id] = waiter
        written = False
        try:
            async with asyncio.timeout(time_limit):  # anyio's `fail_after`, a third of its cost
                written = True
                try:
                    await self._wire.send(payload, method=method, request_id=request_id, headers=headers)
                except ConnectionLost as exc:
                    self._close(exc)
                await waiter.done.wait()
        except TimeoutError:
            if cancellable:
                with anyio.move_on_after(_CANCEL_WRITE_TIMEOUT):
                    await self._cancel(request_id, f"timed out after {time_limit}s", headers)
            raise RpcError(REQUEST_TIMEOUT, f"Request {method!r} timed out") from None
        except anyio.get_cancelled_exc_class():
            if cancellable and written and not waiter.done.is_set():
                with anyio.move_on_after(_CANCEL_WRITE_TIMEOUT, shield=True):
                    await self._cancel(request_id, "caller cancelled", headers)
            raise
        finally:
            if self._pending.get(request_id) is waiter:
                del self._pending[request_id]
        if waiter.progress_sent is not None:
            # The server sent its progress before the reply: the caller hands it on first.
            with anyio.move_on_after(_PROGRESS_DRAIN_TIMEOUT):
                await waiter.progress_sent.wait()
        if waiter.error is not None:
            error = waiter.error
            raise RpcError(error["code"], error["message"], error.get("data"))
        assert waiter.result is not None
        return waiter.result

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a notification; dropped (debug-logged) when the connection is down."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self._send_quietly(dumps(message), method, headers)

    async def _cancel(self, request_id: RequestId, reason: str, headers: Mapping[str, str] | None) -> None:
        if self.closed.is_set() or not self._wire.cancels_by_notification:
            return
        await self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason}, headers=headers)

    async def _send_quietly(self, payload: bytes, method: str | None, headers: Mapping[str, str] | None) -> None:
        if self.closed.is_set():
            logger.debug("upstream %s: dropped %s, the connection is closed", self.name, method or "a reply")
            return
        try:
            await self._wire.send(payload, method=method, headers=headers)
        except ConnectionLost as exc:
            logger.debug("upstream %s: dropped %s: %s", self.name, method or "a reply", exc)
            self._close(exc)

    # -- what the wire hands in (`Inbox`) ------------------------------------------------------

    def deliver(self, message: Any, *, reply_to: RequestId | None = None) -> None:
        """Route one message the server sent."""
        if not isinstance(message, dict):
            logger.warning("upstream %s: dropped a message that is not a JSON-RPC object", self.name)
            return
        method = message.get("method")
        if method is None:
            self._settle_reply(message, reply_to)
        elif not isinstance(method, str):
            logger.warning("upstream %s: dropped a message with a non-string method", self.name)
        elif "id" in message:
            self._spawn(self._answer, message.get("id"), method, message.get("params"))
        else:
            self._notified(method, message.get("params"))

    def fail(self, request_id: RequestId, code: int, message: str) -> None:
        waiter = self._pending.get(request_id)
        if waiter is not None:
            waiter.settle(None, {"code": code, "message": message})

    def _settle_reply(self, message: dict[str, Any], reply_to: RequestId | None) -> None:
        request_id = message.get("id")
        if reply_to is not None and request_id != reply_to and request_id is not None:
            logger.warning(
                "upstream %s: dropped a reply for request id %r on the stream of request %r",
                self.name,
                request_id,
                reply_to,
            )
            return
        key = reply_to if reply_to is not None else request_id
        waiter = self._pending.get(key) if isinstance(key, str | int) and not isinstance(key, bool) else None
        if waiter is None or waiter.done.is_set():
            logger.warning("upstream %s: dropped a reply for unknown request id %r", self.name, request_id)
            return
        if "error" in message:
            error = message["error"]
            if not (isinstance(error, dict) and isinstance(error.get("code"), int) and "message" in error):
                error = {"code": INTERNAL_ERROR, "message": "the server sent a malformed error"}
            waiter.settle(None, {**error, "message": str(error["message"])})
        elif isinstance(result := message.get("result"), dict):
            waiter.settle(result, None)
        else:
            waiter.settle(None, {"code": INTERNAL_ERROR, "message": "the server sent a malformed reply"})

    def _notified(self, method: str, params: Any) -> None:
        params = params if isinstance(params, dict) else {}
        if method == "notifications/progress":
            token = params.get("progressToken")
            waiter = self._pending.get(token) if isinstance(token, str | int) and not isinstance(token, bool) else None
            progress = params.get("progress")
            if (
                waiter is not None
                and waiter.on_progress is not None
                and isinstance(progress, int | float)
                and not isinstance(progress, bool)
            ):
                total, text = params.get("total"), params.get("message")
                waiter.progress.append(
                    (
                        float(progress),
                        float(total) if isinstance(total, int | float) else None,
                        text if isinstance(text, str) else None,
                    )
                )
                if waiter.progress_sent is None or waiter.progress_sent.is_set():
                    waiter.progress_sent = anyio.Event()
                    self._spawn(_hand_on_progress, waiter)
            return
        if method == "notifications/cancelled":
            scope = self._serving.get(params.get("requestId"))
            if scope is not None:
                scope.cancel()
            return
        self._spawn(self._contained_notification, method, params)

    def _spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        if self._tg is None:
            logger.debug("upstream %s: dropped a message, the session is not running", self.name)
            return
        self._tg.start_soon(fn, *args)

    async def _contained_notification(self, method: str, params: dict[str, Any]) -> None:
        try:
            await self._on_notification(method, params)
        except Exception:
            logger.exception("upstream %s: the handler of %r raised", self.name, method)

    async def _answer(self, request_id: Any, method: str, params: Any) -> None:
        """Answer one server-to-client request through the handler (not at all if the server cancels it)."""
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            logger.warning("upstream %s: dropped a %s request with an invalid id", self.name, method)
            return
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        scope = anyio.CancelScope()
        self._serving[request_id] = scope
        try:
            with scope:
                try:
                    reply["result"] = await self._on_request(method, params if isinstance(params, dict) else {})
                except ValidationError:
                    reply["error"] = {"code": INVALID_PARAMS, "message": "Invalid request parameters", "data": ""}
                except Exception as exc:
                    error = rpc_error(exc)  # the agent's error reply, or Bastion's refusal
                    if error is None:
                        logger.exception("upstream %s: the handler of %r raised", self.name, method)
                    reply["error"] = error.reply() if error is not None else {"code": 0, "message": str(exc)}
        finally:
            if self._serving.get(request_id) is scope:
                del self._serving[request_id]
        if scope.cancel_called:
            return  # the server cancelled it: it must not be answered
        await self._send_quietly(dumps(reply), None, None)


async def _hand_on_progress(waiter: _Waiter) -> None:
    """Hand a request's progress to its handler, in the order it came, one at a time."""
    assert waiter.on_progress is not None
    assert waiter.progress_sent is not None
    try:
        while waiter.progress:
            try:
                await waiter.on_progress(*waiter.progress.popleft())
            except Exception:
                logger.exception("a progress handler raised")
    finally:
        waiter.progress_sent.set()
