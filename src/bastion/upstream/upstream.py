"""One long-lived client session to an upstream MCP server, shared by every agent that reaches it.

The session is opened when the gateway starts and reopened on the next request after it
dies. It is Bastion's own JSON-RPC session (`bastion.upstream`) for stdio and Streamable
HTTP servers; legacy HTTP+SSE servers, an exotic transport, get the SDK's client
(`upstream_sdk`), which the differential tests also run as the reference
(`Upstream(..., client="sdk")`). A request in flight when the server dies fails promptly
with CONNECTION_CLOSED (every waiter is woken when the connection ends), never hangs.

A Streamable HTTP server of the handshake era may forget the session while the connection
looks fine (it restarted on the same port, or expired the session): it answers the old
`Mcp-Session-Id` with HTTP 404 (see `http_session`). The session is then replaced, and a
request the 404 refused is sent once more on a new session: the server did not process it.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TextIO

import anyio
import anyio.abc

from bastion import __version__
from bastion.config import HttpServerConfig, StdioServerConfig
from bastion.lazy_import import lazy_module
from bastion.mcp_names import CONNECTION_CLOSED, INTERNAL_ERROR
from bastion.rpc_error import RpcError
from bastion.runtime.command_paths import resolve_command as resolve_command  # re-exported: it lived here
from bastion.runtime.prestart import PrestartedServer
from bastion.runtime.server_command import ServerCommand
from bastion.runtime.server_runtime import ServerRuntime, ServerStart
from bastion.upstream.handshake import UpstreamInfo, negotiate
from bastion.upstream.jsonrpc_session import JsonRpcSession
from bastion.upstream.sdk_access import parsed_endpoint
from bastion.upstream.server_messages import ServerMessages
from bastion.upstream.stdio_wire import spawn, stdio_wire
from bastion.upstream.upstream_wire import CLIENT_CAPABILITIES, Stamp
from bastion.upstream.wire import RequestId

if TYPE_CHECKING:
    import httpx2
    import mcp_types as types
    from mcp.shared.dispatcher import ProgressFnT

    from bastion.upstream.http_session import SessionWatch
else:  # the protocol-wide models: a quarter of a wrap's start, loaded by their first use
    types = lazy_module("mcp_types")

__all__ = ["Upstream", "UpstreamInfo", "UpstreamUnavailable", "resolve_command"]

logger = logging.getLogger(__name__)

ServerConfig = StdioServerConfig | HttpServerConfig

ServerRequestHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers a server-to-client request (sampling, elicitation, roots): `(method, params) -> result`."""

NotificationHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Receives a server notification (list changed, logging, resource updated): `(method, params)`."""

ClientKind = Literal["raw", "sdk"]
"""Whose client speaks to the server: Bastion's own JSON-RPC session, or the SDK's (the reference)."""

CLIENT_INFO: Final[Mapping[str, str]] = MappingProxyType({"name": "bastion", "version": __version__})
"""Bastion's `Implementation`, as the wire has it, in every handshake it makes."""

_CONNECT_TIMEOUT = 60.0
"""How long opening a session may take (npx may download a package on first start)."""


class UpstreamUnavailable(Exception):
    """The upstream could not be started or reached."""


class _SessionForgotten(Exception):
    """The server answered HTTP 404 for Bastion's session: the request was not processed."""


class _Session(Protocol):
    """An open session to the server: `JsonRpcSession`, or the SDK's (`upstream_sdk.SdkSession`)."""

    closed: anyio.Event
    failure: BaseException | None

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        time_limit: float | None = None,
        on_progress: ProgressFnT | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: RequestId | None = None,
        cancellable: bool = True,
    ) -> dict[str, Any]: ...

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, *, headers: Mapping[str, str] | None = None
    ) -> None: ...


@dataclass
class _Connection:
    """How one session reaches its server: a process (started here, or prestarted), or a URL."""

    start: ServerStart | None = None
    process: subprocess.Popen[bytes] | None = None
    """Already running (`bastion wrap`'s prestarted sandbox)."""
    params: ServerCommand | None = None
    """To start (stdio)."""
    errlog: TextIO | None = None
    client: httpx2.AsyncClient | None = None
    """Streamable HTTP."""
    watch: SessionWatch | None = None
    url: str = ""


class Upstream:
    """The shared session to one configured server.

    `request()` forwards a raw request and returns the raw result dict. Server-to-client
    requests and notifications go to `on_server_request` / `on_notification`, which the
    gateway routes to the right agent. `client="sdk"` speaks through the SDK's client stack
    instead of Bastion's own (the reference the differential tests compare against).
    """

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        *,
        on_server_request: ServerRequestHandler,
        on_notification: NotificationHandler,
        errlog: TextIO | None = None,
        runtime: ServerRuntime | None = None,
        prestarted: PrestartedServer | None = None,
        client: ClientKind = "raw",
    ) -> None:
        self.name = name
        self.client: ClientKind = client
        self.runtime = runtime
        self._prestarted = prestarted
        """Its first start, already running (`bastion wrap`): adopted by the first session."""
        self.config = config
        self._on_server_request = on_server_request
        self._on_notification = on_notification
        self._errlog = errlog if errlog is not None else sys.stderr
        self._session: _Session | None = None
        self._watch: SessionWatch | None = None
        self._stamp: Stamp | None = None
        self._info: UpstreamInfo | None = None
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None
        self._stop: anyio.Event | None = None
        self.starts = 0
        self.last_error: str | None = None
        self.last_exit: tuple[str, int | None] | None = None
        """Why the last session ended (reason, exit code), when it ran and ended."""
        self.start_failed = False
        self.refusal_state = "restarting"
        self.refusal: str | None = None
        """Set by the supervisor while it holds the server down (backoff, crash loop)."""
        self._start: ServerStart | None = None
        self.session_ended = anyio.Event()
        self.released = anyio.Event()
        """Set when the supervisor stops holding the server down (see `refusal`)."""
        self._hold: anyio.CancelScope | None = None
        """Cancelled to end the open session (`end_session`)."""
        self._end_reason: str | None = None
        self.on_availability: Callable[[str, bool], None] | None = None
        """Told (name, up) when a session opens or ends by itself (the aggregate endpoints' list_changed)."""

    @property
    def info(self) -> UpstreamInfo | None:
        return self._info

    @property
    def sandboxed(self) -> bool:
        return self.runtime is not None and self.runtime.sandboxed

    def limits_in_force(self) -> dict[str, str]:
        """Which limits the current (or last) start runs under, and by which mechanism."""
        return dict(self.runtime.limits) if self.runtime is not None else {}

    @property
    def is_up(self) -> bool:
        if self._session is None or self._session.closed.is_set() or self._end_reason is not None:
            return False
        return self._watch is None or not self._watch.expired

    @property
    def state(self) -> str:
        """`up`; `starting` (never started yet); `failed` (the last start failed); `down` (it closed);
        or what the supervisor set while it holds the server down (`restarting`, `crash-loop`)."""
        if self.is_up:
            return "up"
        if self.refusal is not None:
            return self.refusal_state
        if self.last_error is None:
            return "starting" if self.starts == 0 else "down"
        return "failed" if self.start_failed else "down"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Upstream]:
        """Own the background task that holds the session open; close it on exit."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
                self._tg = None

    async def _restarted(self) -> None:
        """If the supervisor is restarting the server after a short backoff, wait for that (bounded)."""
        if self.refusal is not None and self.refusal_state == "restarting":
            with anyio.move_on_after(_CONNECT_TIMEOUT):
                await self.released.wait()

    async def ensure_started(self) -> UpstreamInfo:
        """Open the session if it is not open. Raises `UpstreamUnavailable` when it cannot."""
        if self.is_up and self._info is not None:
            return self._info
        for attempt in range(2):
            await self._restarted()
            async with self._lock:
                if self.is_up and self._info is not None:
                    return self._info
                if self._tg is None:
                    raise UpstreamUnavailable(f"server {self.name!r} is not running (gateway shutting down)")
                if self.refusal is not None:
                    if attempt == 0 and self.refusal_state == "restarting":
                        # The supervisor began its restart while this request waited (the server
                        # had just exited): wait for it too, as above, rather than fail at once.
                        continue
                    raise UpstreamUnavailable(f"server {self.name!r} is unavailable: {self.refusal}")
                return await self._start_session()
        raise AssertionError("unreachable")

    async def _start_session(self) -> UpstreamInfo:
        """Open the session (the caller holds `_lock`)."""
        assert self._tg is not None
        try:
            with anyio.fail_after(_CONNECT_TIMEOUT):
                await self._tg.start(self._hold_session)
        except TimeoutError:
            self.start_failed = True
            self.last_error = f"did not answer the handshake within {_CONNECT_TIMEOUT:.0f} s"
            raise UpstreamUnavailable(f"server {self.name!r} {self.last_error}") from None
        except Exception as exc:
            self.start_failed = True
            self.last_error = _describe(exc)
            raise UpstreamUnavailable(f"server {self.name!r} could not be started: {self.last_error}") from exc
        assert self._info is not None
        return self._info

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        on_progress: ProgressFnT | None = None,
    ) -> dict[str, Any]:
        """Forward one request and return the raw result. Raises `RpcError` for error responses.

        When the server answers with HTTP 404 for a session it no longer knows, the request is
        sent once more on a new session. That is safe even for `tools/call`: the server refuses
        an unknown session id before it processes the message, so the first attempt never ran.
        Any other failure is returned as it is, never retried (the request may have run).
        """
        try:
            return await self._request_once(method, params, on_progress)
        except _SessionForgotten:
            logger.info("upstream %s forgot the session (HTTP 404); sending %s on a new one", self.name, method)
        try:
            return await self._request_once(method, params, on_progress)
        except _SessionForgotten:
            # The new session was forgotten at once too (the server restarting again?). This
            # attempt did not run either; the next request opens yet another session.
            raise RpcError(
                INTERNAL_ERROR,
                f"server {self.name!r} forgot its session twice in a row (HTTP 404); the request was not processed",
            ) from None

    async def _request_once(
        self, method: str, params: Mapping[str, Any] | None, on_progress: ProgressFnT | None
    ) -> dict[str, Any]:
        try:
            await self.ensure_started()
        except UpstreamUnavailable as exc:
            raise RpcError(INTERNAL_ERROR, str(exc)) from exc
        session, stamp, watch = self._session, self._stamp, self._watch
        if session is None or stamp is None or session.closed.is_set():
            raise RpcError(CONNECTION_CLOSED, f"server {self.name!r} closed the connection")
        out, headers = stamp.request(method, params or {})
        timeout = self.config.timeout
        if watch is None:
            return await session.request(method, out, time_limit=timeout, on_progress=on_progress, headers=headers)
        request_id = watch.next_id()
        watch.begin()
        try:
            return await session.request(
                method, out, time_limit=timeout, on_progress=on_progress, headers=headers, request_id=request_id
            )
        except RpcError:
            if watch.refused(request_id):
                raise _SessionForgotten from None
            raise
        finally:
            watch.end()

    async def ping(self, within: float) -> None:
        """A protocol-level `ping` on the open session. Raises if it is down or does not answer in time."""
        session, stamp, watch = self._session, self._stamp, self._watch
        if session is None or stamp is None or session.closed.is_set():
            raise RpcError(CONNECTION_CLOSED, f"server {self.name!r} is down")
        out, headers = stamp.request("ping", {})
        request_id = watch.next_id() if watch is not None else None
        with anyio.fail_after(within):
            await session.request("ping", out, time_limit=within, headers=headers, request_id=request_id)

    def kill(self, reason: str) -> bool:
        """Kill a sandboxed server's process (the session then closes and calls in flight fail)."""
        return self._start is not None and self._start.kill(reason)

    def end_session(self, reason: str) -> bool:
        """End the open session for `reason` (its calls in flight fail at once; the next request
        opens a new one). False when no session is open."""
        hold = self._hold
        if hold is None or not self.is_up:
            return False
        # Down at once (`is_up`), and said so: closing the session may wait on the server.
        self._end_reason = self.last_error = reason
        hold.cancel()
        return True

    async def notify(self, method: str, params: Mapping[str, Any] | None) -> None:
        """Forward a client notification (e.g. roots list changed). Dropped if the session is down."""
        session, stamp = self._session, self._stamp
        if session is None or stamp is None:
            return
        headers = stamp.request(method, {})[1]
        with contextlib.suppress(Exception):
            await session.notify(method, dict(params or {}), headers=headers)

    async def _hold_session(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        started = False
        session: _Session | None = None
        self.session_ended = ended = anyio.Event()
        start: ServerStart | None = None
        ended_because: str | None = None  # None: the gateway cancelled it (shutdown)
        try:
            async with AsyncExitStack() as stack:
                connection = self._connection()
                start = self._start = connection.start
                watch = connection.watch
                session, self._info = await self._open(stack, connection)
                if start is not None:
                    start.spoke()
                self._stamp = Stamp(self._info.protocol_version, CLIENT_INFO)
                self._hold = hold = watch.scope if watch is not None else anyio.CancelScope()
                self._end_reason = None
                self._watch = watch
                self._session = session
                self.starts += 1
                self.last_error = None
                self.start_failed = False
                started = True
                task_status.started()
                logger.info("upstream %s up (protocol %s)", self.name, self._info.protocol_version)
                if self.on_availability is not None:
                    self.on_availability(self.name, True)
                # Hold the session until the transport closes (the process exits, or the
                # HTTP stream ends), the server forgets it (`watch.scope` is cancelled), it is
                # ended (`end_session`) or the gateway cancels us.
                with hold:
                    await session.closed.wait()
                if self._end_reason is not None and self._hold is hold:
                    ended_because = self._end_reason
                elif watch is not None and watch.expired:
                    ended_because = "the server forgot the session (HTTP 404 for its Mcp-Session-Id)"
                elif session.failure is not None and connection.client is not None:
                    ended_because = f"connection failed: {_describe(session.failure)}"
                else:
                    ended_because = "connection closed"
        except Exception as exc:
            if not started:
                sandbox_error = start.sandbox_error() if start is not None else None
                if sandbox_error is not None:  # bubblewrap's own words, not "Connection closed"
                    raise UpstreamUnavailable(sandbox_error) from exc
                raise  # to `ensure_started`, through the task group's `start()`
            # The transport failed under the open session. The SDK's Streamable HTTP client
            # lets one POST's httpx error (a dropped connection, a refused reconnect) escape its
            # task group, ending the session and raising here. That ends this session like a
            # closed connection; raised on, it would tear down the task group `running()` owns,
            # and with it the gateway's serving task (every agent answered 500 thereafter).
            ended_because = f"connection failed: {_describe(exc)}"
        finally:
            # A newer session may already have replaced this one (the server forgot this one
            # and it was ended once its last request was answered); only clear our own.
            current = session is not None and self._session is session
            if current:
                self._session = None
                self._watch = None
                self._hold = None
            if start is not None:
                if started and ended_because is not None:  # it ended by itself, not at shutdown
                    self.last_exit = start.exit_reason()
                    ended_because = self.last_exit[0]
                start.release()
            if started and ended_because is not None:
                if current:
                    self.last_error = ended_because
                    logger.warning("upstream %s down: %s", self.name, ended_because)
                    if self.on_availability is not None:
                        self.on_availability(self.name, False)
                else:
                    logger.info("upstream %s: a replaced session ended: %s", self.name, ended_because)
            ended.set()

    def _connection(self) -> _Connection:
        """How the next session reaches the server (a sandboxed start is prepared here)."""
        config = self.config
        if isinstance(config, StdioServerConfig) and self.runtime is not None:
            prestarted, self._prestarted = self._prestarted, None
            if prestarted is not None:
                prestarted.adopted = True
                self.runtime.limits = dict(prestarted.limits)
                self.runtime.adopt_stderr(prestarted.stderr)
                return _Connection(start=prestarted.start, process=prestarted.process)
            params, start = self.runtime.launch(resolve_command(config.command))
            target = self.runtime.stderr or self._errlog
            errlog = start.stderr(target) if start is not None else target
            return _Connection(start=start, params=params, errlog=errlog)
        if isinstance(config, StdioServerConfig):
            params = ServerCommand(
                command=resolve_command(config.command),
                args=list(config.args),
                env=dict(config.env) or None,
                cwd=config.cwd,
            )
            return _Connection(params=params, errlog=self._errlog)
        if config.transport == "streamable-http":
            import httpx2  # the HTTP client is loaded by the first server reached over HTTP

            from bastion.upstream.http_session import SessionWatch

            watch = SessionWatch()
            client = httpx2.AsyncClient(
                headers=dict(config.headers),
                timeout=httpx2.Timeout(30.0, read=config.timeout),
                event_hooks={"response": [watch.on_response]},
            )
            return _Connection(client=client, watch=watch, url=config.url)
        return _Connection(url=config.url)

    async def _open(self, stack: AsyncExitStack, connection: _Connection) -> tuple[_Session, UpstreamInfo]:
        """Connect and negotiate: on Bastion's own session, or the SDK's (`client="sdk"`, legacy SSE)."""
        if self.client == "sdk" or (
            connection.client is None and connection.params is None and connection.process is None
        ):
            from bastion.upstream.upstream_sdk import open_sdk_session  # the SDK's client: this path only

            return await open_sdk_session(
                stack,
                self._sdk_transport(connection),
                name=self.name,
                client_info=types.Implementation.model_validate(CLIENT_INFO),
                on_server_request=self._on_server_request,
                on_notification=self._on_notification,
            )
        if connection.process is not None:
            wire: Any = await stack.enter_async_context(stdio_wire(connection.process, own_group=False))
        elif connection.params is not None:
            params = connection.params
            errlog = connection.errlog if connection.errlog is not None else self._errlog
            process = spawn(params.command, params.args, params.env, params.cwd, errlog)
            wire = await stack.enter_async_context(stdio_wire(process, own_group=True))
        else:
            assert connection.client is not None
            from bastion.upstream.http_wire import http_wire

            wire = await stack.enter_async_context(http_wire(connection.client, parsed_endpoint(connection.url)))
        messages = ServerMessages(self._on_server_request, self._on_notification)
        session = JsonRpcSession(
            wire, name=self.name, on_request=messages.request, on_notification=messages.notification
        )
        await stack.enter_async_context(session.running())
        info = await negotiate(session, CLIENT_INFO, CLIENT_CAPABILITIES)
        messages.version = info.protocol_version
        return session, info

    def _sdk_transport(self, connection: _Connection) -> Any:
        """The SDK client transport for `connection`."""
        config = self.config
        from bastion.upstream.popen_stdio import popen_client
        from bastion.upstream.upstream_sdk import with_client

        if connection.process is not None:
            return popen_client(connection.process)
        if connection.params is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            errlog = connection.errlog if connection.errlog is not None else self._errlog
            command = connection.params
            params = StdioServerParameters(command=command.command, args=command.args, env=command.env, cwd=command.cwd)
            return stdio_client(params, errlog=errlog)
        if connection.client is not None:
            return with_client(connection.client, connection.url)
        assert isinstance(config, HttpServerConfig)
        from mcp.client.sse import sse_client

        return sse_client(config.url, headers=dict(config.headers), timeout=min(config.timeout, 30.0))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return str(exc) or type(exc).__name__
