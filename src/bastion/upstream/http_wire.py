"""A Streamable HTTP server as a `Wire`: each message a POST, a request's reply read in its own task.

A request's POST is answered with its reply as JSON, or with an SSE stream that carries
the server's notifications and requests about it and ends with the reply (a stream that
breaks after an event with an id is resumed with a GET and `Last-Event-ID`). Handshake-era
servers give the session an `Mcp-Session-Id` at `initialize`; it, and the negotiated
protocol version, ride on every later message, a GET stream carries what the server sends
on its own, and a DELETE ends the session on close. A 2026-era request is cancelled by
aborting its POST, not with a notification.

HTTP-level answers map to JSON-RPC errors as the SDK's transport maps them (202 to a
request, a non-2xx status, an unfollowed redirect); a request that cannot be sent at all
ends the session (the SDK's transport fails its session the same way).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import httpx2

from bastion.mcp_names import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MCP_PROTOCOL_VERSION_HEADER,
    MCP_SESSION_ID,
    METHOD_NOT_FOUND,
    MODERN_PROTOCOL_VERSIONS,
    PARSE_ERROR,
)
from bastion.upstream.json_codec import DecodeError, loads
from bastion.upstream.origin import stream_within_origin
from bastion.upstream.wire import ConnectionLost, Inbox, RequestId

__all__ = ["HttpWire", "http_wire"]

logger = logging.getLogger(__name__)

_MAX_EVENT_SIZE = 1024 * 1024
_RECONNECT_ATTEMPTS = 2
_DEFAULT_RETRY_MS = 1000
_DELETE_TIMEOUT = 5.0
_JSON = "application/json"
_EVENT_STREAM = "text/event-stream"


class HttpWire:
    """One Streamable HTTP endpoint, through the gateway's configured `httpx2` client."""

    def __init__(self, client: httpx2.AsyncClient, url: httpx2.URL | str) -> None:
        self._client = client
        self._url = url
        self._inbox: Inbox | None = None
        self.session_id: str | None = None
        self._version: str | None = None
        self._listen = anyio.Event()

    @property
    def cancels_by_notification(self) -> bool:
        return self._version not in MODERN_PROTOCOL_VERSIONS

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"accept": f"{_JSON}, {_EVENT_STREAM}", "content-type": _JSON}
        if self.session_id:
            headers[MCP_SESSION_ID] = self.session_id
        if self._version:
            headers[MCP_PROTOCOL_VERSION_HEADER] = self._version
        if extra:
            headers.update(extra)
        return headers

    async def send(
        self,
        payload: bytes,
        *,
        method: str | None,
        request_id: RequestId | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if method == "initialize":
            self._version = None  # a discover probe's version must not ride on the handshake
        elif headers is not None and (stamped := headers.get(MCP_PROTOCOL_VERSION_HEADER)) is not None:
            self._version = stamped
        try:
            async with stream_within_origin(
                self._client, "POST", self._url, content=payload, headers=self._headers(headers)
            ) as response:
                if request_id is None:
                    if response.status_code >= 400:
                        logger.debug("the server answered a %s with HTTP %d", method or "reply", response.status_code)
                    elif method == "notifications/initialized" and self.session_id:
                        self._listen.set()
                    return
                await self._read_reply(response, method, request_id)
        except httpx2.TransportError as exc:
            raise ConnectionLost(_describe(exc)) from exc

    async def _read_reply(self, response: httpx2.Response, method: str | None, request_id: RequestId) -> None:
        inbox = self._inbox
        assert inbox is not None
        status = response.status_code
        if status == 202:
            inbox.fail(request_id, INVALID_REQUEST, "server answered a request with 202 Accepted")
            return
        if response.next_request is not None:
            location = response.next_request.url.copy_with(userinfo=b"", query=None, fragment=None)
            inbox.fail(
                request_id,
                INVALID_REQUEST,
                f"Redirect to {location} not followed; use that URL as the endpoint if it is the intended server",
            )
            return
        content_type = response.headers.get("content-type", "").lower()
        if status >= 400:
            await self._read_error(response, content_type, request_id)
            return
        if method == "initialize" and (session_id := response.headers.get(MCP_SESSION_ID)):
            self.session_id = session_id
        if content_type.startswith(_JSON):
            body = await response.aread()
            try:
                message = loads(body)
            except DecodeError as exc:
                inbox.fail(request_id, PARSE_ERROR, f"Failed to parse JSON response: {exc}")
                return
            inbox.deliver(message, reply_to=request_id)
        elif content_type.startswith(_EVENT_STREAM):
            await self._read_reply_stream(response, request_id)
        else:
            inbox.fail(request_id, INVALID_REQUEST, f"Unexpected content type: {content_type}")
            return
        # Settled by now, unless the server replied for another id (dropped): nothing else will come.
        inbox.fail(request_id, INTERNAL_ERROR, "the server's reply did not answer this request")

    async def _read_error(self, response: httpx2.Response, content_type: str, request_id: RequestId) -> None:
        """A non-2xx answer: the JSON-RPC error in its body if it has one, else one named after the status."""
        inbox = self._inbox
        assert inbox is not None
        if content_type.startswith(_JSON):
            try:
                message = loads(await response.aread())
            except (httpx2.StreamError, DecodeError):
                message = None
            if isinstance(message, dict) and isinstance(message.get("error"), dict):
                inbox.deliver({"jsonrpc": "2.0", "id": request_id, "error": message["error"]}, reply_to=request_id)
                return
        if response.status_code == 404:
            if self.session_id is None:
                inbox.fail(request_id, METHOD_NOT_FOUND, "Not Found")
            else:
                inbox.fail(request_id, INVALID_REQUEST, "Session terminated")
        else:
            inbox.fail(request_id, INTERNAL_ERROR, "Server returned an error response")

    async def _read_reply_stream(self, response: httpx2.Response, request_id: RequestId) -> None:
        """The events of a request's SSE reply stream, resumed after a break when the server allows it."""
        inbox = self._inbox
        assert inbox is not None
        cursor = _Cursor()
        if await self._follow(response, request_id, cursor):
            return
        for _ in range(_RECONNECT_ATTEMPTS):
            if cursor.last_event_id is None:
                break
            await anyio.sleep(cursor.delay)
            headers = self._headers({"accept": _EVENT_STREAM, "last-event-id": cursor.last_event_id})
            try:
                async with stream_within_origin(self._client, "GET", self._url, headers=headers) as resumed:
                    if resumed.status_code < 400 and await self._follow(resumed, request_id, cursor):
                        return
            except httpx2.TransportError:
                logger.debug("resuming the SSE reply stream failed", exc_info=True)
        if cursor.last_event_id is None:
            inbox.fail(request_id, CONNECTION_CLOSED, "SSE stream ended without a response")
        else:
            inbox.fail(request_id, CONNECTION_CLOSED, "SSE stream ended and reconnection attempts were exhausted")

    async def _follow(self, response: httpx2.Response, request_id: RequestId, cursor: _Cursor) -> bool:
        """Deliver a reply stream's events; True once the request is settled (its reply, or a broken stream)."""
        inbox = self._inbox
        assert inbox is not None
        try:
            async for event in httpx2.EventSource(response, max_event_size=_MAX_EVENT_SIZE):
                cursor.saw(event)
                if _deliver_event(inbox, event, request_id):
                    return True
        except httpx2.SSEError as exc:
            inbox.fail(request_id, CONNECTION_CLOSED, f"SSE stream failed: {exc}")
            return True
        except httpx2.HTTPError:
            logger.debug("SSE reply stream ended", exc_info=True)
        return False

    def attach(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def run(self) -> None:
        """Hold the GET stream of a handshake-era session open (reopening it when it drops); never ends
        by itself: an HTTP session ends when a message cannot be sent, or when it is closed."""
        inbox = self._inbox
        assert inbox is not None
        await self._listen.wait()
        cursor = _Cursor()
        attempts = 0
        while True:
            extra = {"accept": _EVENT_STREAM, "cache-control": "no-store"}
            if cursor.last_event_id:
                extra["last-event-id"] = cursor.last_event_id
            try:
                async with stream_within_origin(self._client, "GET", self._url, headers=self._headers(extra)) as r:
                    if r.next_request is not None:
                        logger.warning("GET stream not opened: the server redirects it")
                        break
                    r.raise_for_status()
                    async for event in httpx2.EventSource(r, max_event_size=_MAX_EVENT_SIZE):
                        cursor.saw(event)
                        _deliver_event(inbox, event, None)
                attempts = 0
            except httpx2.HTTPError:
                logger.debug("GET stream error", exc_info=True)
                attempts += 1
                if attempts >= _RECONNECT_ATTEMPTS:
                    break
            await anyio.sleep(cursor.delay)
        await anyio.sleep_forever()

    async def terminate(self) -> None:
        """End the server's session (DELETE), if it gave one."""
        if not self.session_id:
            return
        try:
            async with stream_within_origin(self._client, "DELETE", self._url, headers=self._headers(None)) as r:
                if r.status_code not in (200, 204, 404, 405):
                    logger.warning("Session termination failed: %d", r.status_code)
        except httpx2.HTTPError as exc:
            logger.warning("Session termination failed: %s", exc)


class _Cursor:
    """Where an SSE stream can be resumed from, and how long the server asks to wait first."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self._retry_ms: int | None = None

    def saw(self, event: httpx2.ServerSentEvent) -> None:
        if event.id:
            self.last_event_id = event.id
        if event.retry is not None:
            self._retry_ms = event.retry

    @property
    def delay(self) -> float:
        return (self._retry_ms if self._retry_ms is not None else _DEFAULT_RETRY_MS) / 1000


def _deliver_event(inbox: Inbox, event: httpx2.ServerSentEvent, request_id: RequestId | None) -> bool:
    """Hand one SSE event's message on; True when it was the reply the stream was for."""
    if event.event != "message" or not event.data:
        return False  # priming events (an id, no data) only mark where to resume
    try:
        message = loads(event.data)
    except DecodeError as exc:
        logger.warning("unparsable SSE message from the server: %s", exc)
        if request_id is not None:
            inbox.fail(request_id, PARSE_ERROR, f"Failed to parse SSE message: {exc}")
            return True
        return False
    inbox.deliver(message, reply_to=request_id)
    return request_id is not None and isinstance(message, dict) and "method" not in message


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def http_wire(client: httpx2.AsyncClient, url: httpx2.URL | str) -> AsyncIterator[HttpWire]:
    """A wire to `url` through `client` (which it closes); the server's session is ended on exit."""
    async with client:
        wire = HttpWire(client, url)
        try:
            yield wire
        finally:
            with anyio.move_on_after(_DELETE_TIMEOUT, shield=True):
                await wire.terminate()
