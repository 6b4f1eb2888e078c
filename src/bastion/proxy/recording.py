"""Audit of every request an agent sends, as SDK server middleware.

A `tools/call` is recorded durably before anything else happens to it (guards, forwarding);
other requests are recorded through the group-committed path. When the store cannot write,
requests are refused (fail closed) unless `audit.on_failure: allow` says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol

import anyio
from pydantic import ValidationError

from bastion.audit.events import AuditEvent, CallCompleted, CallRequested, VerdictReached
from bastion.audit.store import AuditStore, AuditStoreError
from bastion.compact_json import json_size
from bastion.mcp_names import INTERNAL_ERROR, INVALID_REQUEST
from bastion.model import Outcome, Principal, Verdict
from bastion.proxy.in_flight import InFlightCall, InFlightCalls
from bastion.proxy.refusals import RefusalRecorder
from bastion.proxy.sessions import session_of
from bastion.rpc_error import RpcError, rpc_error
from bastion.upstream.sdk_access import connection_of

if TYPE_CHECKING:  # the SDK's server types: its middleware runs only once the SDK's server is loaded
    from mcp.server.connection import Connection
    from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext

    from bastion.observability.tracing import CallTrace, CallTracer
    from bastion.proxy.downstream import AgentSession

logger = logging.getLogger(__name__)

_call_ids = random.Random()  # seeded from os.urandom


def new_call_id() -> str:
    """A call's correlation id: 128 random bits as 32 hex digits (like `uuid4().hex`). Not a
    secret (the log and the dashboard show it), so drawn without a system call per call:
    `uuid4` reads `os.urandom`, which releases the GIL, and under load the writer thread or
    another process then holds the event loop up (tens of microseconds a call)."""
    return f"{_call_ids.getrandbits(128):032x}"


_SESSION_TRANSPORTS = frozenset({"sse", "stdio"})
"""Where the front door cannot see a request's id in flight (Streamable HTTP's is checked there)."""
_UNRECORDED_METHODS = frozenset({"ping"})
"""Liveness probes: answered by Bastion itself, never forwarded, not worth a record each."""


@dataclass(eq=False)
class CallState:
    """What the handlers learn about a request that the audit record needs."""

    call_id: str
    principal: Principal | None
    agent: AgentSession | None
    verdict: Verdict | None = None
    """The guard pipeline's verdict on a `tools/call` (allowing ones too: they name the rule)."""
    server: str | None = None
    tool: str | None = None
    store: AuditStore | None = None
    flight: InFlightCall | None = None
    """Its entry among the calls in flight on its server (what the egress proxy blocked during it)."""
    trace: CallTrace | None = None
    """The request's span, when tracing is on."""
    in_flight: InFlightCalls | None = None
    target: Target | None = None
    """Where an aggregate endpoint routes the request (read by its handlers)."""
    session: str | None = None
    """The agent's MCP session (see `session_of`), for the checks that remember per session."""
    counted: bool = False
    """Among the recorder's tool calls in flight (from its write-ahead record to its end)."""
    on_disk: asyncio.Future[None] | None = None
    """Its write-ahead record committed and still being synced (`AuditStore.record_ahead`):
    awaited by `CallRecorder.on_disk` before the call goes to the server, or it is answered."""

    def deny(self, verdict: Verdict) -> None:
        self.verdict = verdict

    def decide(self, verdict: Verdict) -> None:
        """Record the guard pipeline's verdict (a `call.verdict` event) and remember it."""
        self.verdict = verdict
        if verdict.allowed and self.flight is not None and self.in_flight is not None:
            self.in_flight.begin(self.flight)  # on its way to the server now
        if self.store is None:
            return
        event = VerdictReached(
            agent=self.principal.agent if self.principal is not None else None,
            server=self.server,
            correlation_id=self.call_id,
            tool=self.tool,
            verdict=str(verdict.decision),
            rule=verdict.check or None,
            reason=verdict.reason,
            log=verdict.log,
            approval_id=verdict.approval_id,
            allow_rule_id=verdict.allow_rule_id,
            source_call=verdict.source_call,
        )
        record_soon(self.store, event, "verdict on")


@dataclass(frozen=True, slots=True)
class Target:
    """The real server and tool (or prompt, for `prompts/get`) a request is for, as the audit names them."""

    server: str | None
    tool: str | None = None
    error: str | None = None
    """Why it cannot be served (no such tool, its server is down): the handler refuses with it."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """What the audit record of one request is made of, as a front door knows it."""

    principal: Principal
    method: str
    params: Mapping[str, Any]
    target: Target
    agent: AgentSession | None
    """The agent session it came on, when it has a channel back (notifications reach it)."""
    transport: str
    endpoint: str | None
    request_id: Any = None
    scope: Mapping[str, Any] | None = None
    """The HTTP request's ASGI scope (headers, timing of authentication), for its trace."""
    session: str | None = None
    """The agent session it belongs to (`gateway.sessions`), for what is remembered per session."""


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A request recorded (`call.requested`) and not yet ended."""

    state: CallState
    requested: CallRequested
    began: float


class RecordedServer(Protocol):
    """What the recorder needs of the MCP server an agent talks to (`ProxyServer`, `AggregateServer`)."""

    @property
    def endpoint(self) -> str | None:
        """`None` for a server's own endpoint; `aggregate` or `virtual:<name>` otherwise (in the audit events)."""

    @property
    def served_name(self) -> str:
        """The server's name, a virtual server's, or `/mcp`: what refusals at this endpoint name."""

    def principal_of(self, ctx: ServerRequestContext[Any, Any]) -> Principal | None: ...

    def bind_connection(self, ctx: ServerRequestContext[Any, Any], principal: Principal) -> AgentSession | None: ...

    async def target_of(self, ctx: ServerRequestContext[Any, Any], principal: Principal) -> Target: ...


current_call: ContextVar[CallState | None] = ContextVar("bastion_current_call", default=None)


def call_log_context() -> dict[str, str]:
    """The ids of the request being handled, for JSON log lines (empty outside one)."""
    state = current_call.get()
    if state is None:
        return {}
    ids = {"call_id": state.call_id}
    if state.principal is not None:
        ids["agent"] = state.principal.agent
    if state.server is not None:
        ids["server"] = state.server
    if state.tool is not None:
        ids["tool"] = state.tool
    return ids


class CallRecorder:
    """Writes one audit record per request, through `store`."""

    def __init__(
        self,
        store: AuditStore,
        *,
        refuse_on_failure: bool = True,
        on_failure: Callable[[AuditStoreError], None] | None = None,
        in_flight: InFlightCalls | None = None,
        tracer: CallTracer | None = None,
        refusals: RefusalRecorder | None = None,
    ) -> None:
        self.store = store
        self.in_flight = in_flight if in_flight is not None else InFlightCalls()
        """Every request between its record and its end, by server (see `bastion.proxy.in_flight`)."""
        self.tracer = tracer
        """Makes each request's span when tracing is on (None: off)."""
        self.refusals = refusals
        """Where a request refused before its record goes (`request.refused`)."""
        self._tool_calls_open = 0
        """Tool calls recorded and not yet ended (a durable record made with none open is `alone`)."""
        self._ids_in_flight: set[tuple[Connection, str]] = set()
        """(connection, request id) of each request in flight over a legacy SSE session or stdio."""
        self.refuse_on_failure = refuse_on_failure
        self.on_failure = on_failure
        """Told each time the store cannot write (the gateway raises `audit_store_failing`)."""

    def middleware(self, server: RecordedServer) -> ServerMiddleware[Any]:
        """The SDK server middleware recording `server`'s requests (the outermost: Bastion's `RpcError`
        raised under it reaches the SDK as its `MCPError`, the error reply it answers with)."""

        async def record(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
            try:
                return await recorded(ctx, call_next)
            except RpcError as exc:
                raise exc.as_sdk() from exc

        async def recorded(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
            if ctx.request_id is None or ctx.method in _UNRECORDED_METHODS:
                return await call_next(ctx)
            if _transport_of(ctx) not in _SESSION_TRANSPORTS:
                return await self._record(server, ctx, call_next)
            # Over a legacy SSE session or stdio, a reused id would share the first request's
            # place in the SDK's table of requests in flight (its cancellation): refuse it.
            key = (connection_of(ctx), str(ctx.request_id))
            if key in self._ids_in_flight:
                self._refuse_duplicate(server, ctx)
            self._ids_in_flight.add(key)
            try:
                return await self._record(server, ctx, call_next)
            finally:
                self._ids_in_flight.discard(key)

        return record

    def _refuse_duplicate(self, server: RecordedServer, ctx: ServerRequestContext[Any, Any]) -> NoReturn:
        message = (
            f"Bastion: a request with id {json.dumps(ctx.request_id)[:80]} is already in flight on this "
            "session: use a new id for each request (the first one is still being answered)"
        )
        if self.refusals is not None:
            principal = server.principal_of(ctx)
            self.refusals.refused(
                "duplicate_id",
                409,
                agent=principal.agent if principal is not None else None,
                server=server.served_name,
                path=_transport_of(ctx),
                detail=message,
            )
        raise RpcError(INVALID_REQUEST, message)

    async def _record(
        self, server: RecordedServer, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        principal = server.principal_of(ctx)
        if principal is None:
            raise RpcError(INVALID_REQUEST, "Bastion: request is not authenticated")
        params = ctx.params if isinstance(ctx.params, Mapping) else {}
        target = await server.target_of(ctx, principal)
        scope = getattr(ctx.request, "scope", None)
        opened = await self.open(
            RecordedRequest(
                principal=principal,
                method=ctx.method,
                params=params,
                target=target,
                agent=server.bind_connection(ctx, principal),
                transport=_transport_of(ctx),
                endpoint=server.endpoint,
                request_id=ctx.request_id,
                scope=scope if isinstance(scope, Mapping) else None,
                session=session_of(ctx),
            )
        )
        result: HandlerResult = await self.observe(opened, lambda: call_next(ctx))
        return result

    async def open(self, request: RecordedRequest) -> OpenCall:
        """Record `request` (write-ahead for a `tools/call`); fail closed when the store cannot write.

        The front doors call this before anything else happens to a request (the SDK
        middleware above, the relay's audit hook); `observe` then runs the request."""
        principal = request.principal
        params = request.params
        is_tool_call = request.method == "tools/call"
        target = request.target
        tool = target.tool if is_tool_call else None
        state = CallState(
            new_call_id(),
            principal,
            request.agent,
            server=target.server,
            tool=tool,
            store=self.store,
            target=target,
            session=request.session,
        )
        if self.tracer is not None:
            state.trace = _begin_trace(self.tracer, request, state)
        requested = CallRequested(
            time=time.time(),
            agent=principal.agent,
            server=target.server,
            correlation_id=state.call_id,
            method=request.method,
            tool=tool,
            arguments=params.get("arguments") if is_tool_call else _interesting_params(params),
            transport=request.transport,
            trace_id=state.trace.trace_id if state.trace is not None else None,
            endpoint=request.endpoint,
        )
        began = time.perf_counter()
        try:
            if is_tool_call:
                # Alone: no other call in flight here, so the commit may hold this thread (see
                # audit/writer.py): nothing else to do meanwhile, nobody to group-commit with.
                # It may still be syncing when this returns: see `on_disk`.
                state.on_disk = await self.store.record_ahead(requested, alone=self._tool_calls_open == 0)
                self._tool_calls_open += 1
                state.counted = True
            else:
                await self.store.record(requested, durable=False)
            if self.tracer is not None and is_tool_call:
                self.tracer.past_child("bastion.audit.commit", time.perf_counter() - began)
        except AuditStoreError as exc:
            self._cannot_write(exc)
        return OpenCall(state, requested, began)

    async def on_disk(self, state: CallState) -> None:
        """Wait until `state`'s write-ahead record is on disk (it is judged meanwhile); fail closed
        as `open` does. Called before the call is forwarded, and before any answer (`observe`)."""
        syncing = state.on_disk
        if syncing is None:
            return
        state.on_disk = None
        try:
            await syncing
        except AuditStoreError as exc:
            self._cannot_write(exc)

    def _cannot_write(self, exc: AuditStoreError) -> None:
        """The store could not take a write-ahead record: raise the refusal (unless configured to go on)."""
        logger.error("audit store cannot write: %s", exc)
        if self.on_failure is not None:
            self.on_failure(exc)
        if self.refuse_on_failure:
            raise RpcError(
                INTERNAL_ERROR,
                "Bastion refused the request: its audit log cannot be written",
            ) from exc

    async def observe(self, opened: OpenCall, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run `call` as the request `opened` records, then record how it ended (`call.completed`)."""
        state, requested, began = opened.state, opened.requested, opened.began
        principal = state.principal
        assert principal is not None
        is_tool_call = requested.method == "tools/call"
        token = current_call.set(state)
        state.flight = InFlightCall(state.call_id, principal.agent, requested.server or "", requested.tool)
        state.in_flight = self.in_flight
        if not is_tool_call:
            self.in_flight.begin(state.flight)  # no guard holds it: it goes to the server now
        try:
            result = await call()
            await self.on_disk(state)  # a call answered without being forwarded (denied, refused)
        except ValidationError:
            await self._finish(requested, state, began, Outcome.ERROR, error="invalid request parameters")
            raise
        except BaseException as exc:
            replied = rpc_error(exc)  # an error reply (Bastion's, the server's or the SDK's)
            cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
            error = replied.message if replied is not None else "cancelled" if cancelled else type(exc).__name__
            await self._finish(requested, state, began, Outcome.ERROR, error=error)
            raise
        finally:
            current_call.reset(token)
            self.in_flight.end(state.flight)
        denied = state.verdict is not None and not state.verdict.allowed
        outcome = Outcome.DENIED if denied else Outcome.ALLOWED
        is_error = bool(result.get("isError")) if is_tool_call and isinstance(result, Mapping) else None
        await self._finish(requested, state, began, outcome, is_error=is_error, result=result)
        return result

    async def _finish(
        self,
        requested: CallRequested,
        state: CallState,
        began: float,
        outcome: Outcome,
        *,
        error: str | None = None,
        is_error: bool | None = None,
        result: Any = None,
    ) -> None:
        latency_ms = (time.perf_counter() - began) * 1000.0
        if state.on_disk is not None:  # answered with an error before it was synced: not forwarded
            state.on_disk.add_done_callback(_unsynced)
            state.on_disk = None
        if state.counted:
            state.counted = False
            self._tool_calls_open -= 1
        verdict = state.verdict
        if state.trace is not None:
            rule = (verdict.check or None) if verdict is not None else None
            state.trace.end(str(outcome), rule=rule, error=error)
        # Queued without an await (the same as `record(completed, durable=False)`), so a
        # cancelled request has its ending recorded all the same, with no shield to set up;
        # and built then, so that measuring the result is not on the answer's way either.
        ending = _Ending(requested, state, outcome, latency_ms, error, is_error, result)
        asyncio.get_running_loop().call_soon(self._record_completed, ending)

    def _record_completed(self, ending: _Ending) -> None:
        """Record a call's `call.completed` (scheduled by `_finish`, on the loop's next turn)."""
        try:
            completed = ending.event()
        except Exception:
            logger.exception("recording the end of %s failed", ending.state.call_id)
            return
        _record_now(self.store, completed, "end of")


class _Ending(NamedTuple):
    """What `CallRecorder._finish` knows of a call's end, for its `call.completed`."""

    requested: CallRequested
    state: CallState
    outcome: Outcome
    latency_ms: float
    error: str | None
    is_error: bool | None
    result: Any

    def event(self) -> CallCompleted:
        requested, state, result = self.requested, self.state, self.result
        verdict, flight = state.verdict, state.flight
        return CallCompleted(
            agent=requested.agent,
            server=requested.server,
            correlation_id=state.call_id,
            method=requested.method,
            tool=requested.tool,
            outcome=str(self.outcome),
            latency_ms=self.latency_ms,
            is_error=self.is_error,
            result_size=_size_of(result) if result is not None else None,
            result=result if requested.method == "tools/call" else None,
            error=verdict.reason if verdict is not None and not verdict.allowed else self.error,
            rule=(verdict.check or None) if verdict is not None else None,
            log=verdict.log if verdict is not None else False,
            approval_id=verdict.approval_id if verdict is not None else None,
            allow_rule_id=verdict.allow_rule_id if verdict is not None else None,
            egress_blocked=list(flight.egress_blocked) if flight and flight.egress_blocked else None,
            endpoint=requested.endpoint,
        )


def _unsynced(syncing: asyncio.Future[None]) -> None:
    """Log a write-ahead record's failed sync that nobody awaited (its call was not forwarded)."""
    if not syncing.cancelled() and (exc := syncing.exception()) is not None:
        logger.error("audit store cannot write: %s", exc)


def record_soon(store: AuditStore, event: AuditEvent, what: str) -> None:
    """Record `event` (one nobody waits on) on the event loop's next turn, once the calling task
    has gone as far as it can without waiting: a `call.verdict` is then encoded and queued while
    the call is on its way to the server, instead of before. A call's `call.completed` goes the
    same way, built then too (`CallRecorder._finish`), once the answer is written to the agent.
    Callbacks run in the order they were scheduled, so a call's events keep theirs. Such events
    are never committed at once anyway (they linger, see `audit/writer.py`); a failure to record
    one is logged, as when it was recorded in line."""
    asyncio.get_running_loop().call_soon(_record_now, store, event, what)


def _record_now(store: AuditStore, event: AuditEvent, what: str) -> None:
    try:
        store.record_nowait(event)
    except AuditStoreError as exc:
        logger.error("audit store cannot record the %s %s: %s", what, event.correlation_id, exc)
    except Exception:
        logger.exception("recording the %s %s failed", what, event.correlation_id)


def _begin_trace(tracer: CallTracer, request: RecordedRequest, state: CallState) -> CallTrace | None:
    from bastion.observability.tracing import TracedRequest  # tracing is on: OpenTelemetry is installed

    scope = request.scope
    headers: dict[str, str] | None = None
    auth_seconds = None
    if scope is not None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        auth_seconds = scope.get("bastion.auth_seconds")
    return tracer.begin(
        TracedRequest(
            method=request.method,
            tool=state.tool,
            server=state.server or "",
            agent=state.principal.agent if state.principal is not None else "",
            call_id=state.call_id,
            request_id=request.request_id,
            session_id=headers.get("mcp-session-id") if headers is not None else None,
            transport=request.transport,
            meta=request.params.get("_meta"),
            headers=headers,
            auth_seconds=auth_seconds if isinstance(auth_seconds, float) else None,
        )
    )


def _transport_of(ctx: ServerRequestContext[Any, Any]) -> str:
    scope = getattr(ctx.request, "scope", None)
    if isinstance(scope, Mapping):
        return str(scope.get("bastion.transport", "http"))
    return "stdio"


def _interesting_params(params: Mapping[str, Any]) -> Any:
    """What to keep of a non-tool request's params: everything but the `_meta` envelope."""
    kept = {k: v for k, v in params.items() if k != "_meta"}
    return kept or None


def _size_of(result: Any) -> int:
    """Bytes of `result` as compact UTF-8 JSON; -1 when it has no such form."""
    try:
        return json_size(result)
    except (TypeError, ValueError):
        return -1
