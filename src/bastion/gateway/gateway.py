"""The gateway: configuration in, running front doors out.

`Gateway(config, ...)` holds what the caller plugged in (`GatewayOptions`); `running()` builds
and starts everything else (`compose.assemble`: the composition root, read top to bottom) and
stops it all on exit. Then it serves: over HTTP (`serve_http`), or over stdio to a single
agent (`serve_stdio`, used by `bastion wrap`). What it is made of, and the questions its parts
ask of it (`readiness`, `restart_server`, ...), are in `state.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, TextIO

import anyio

from bastion.config import BastionConfig
from bastion.gateway.assembly import config_loaded_event as config_loaded_event
from bastion.gateway.assembly import default_checks as default_checks
from bastion.gateway.assembly import jwt_settings as jwt_settings
from bastion.gateway.assembly import open_audit as open_audit
from bastion.gateway.compose import assemble
from bastion.gateway.options import GatewayOptions
from bastion.gateway.state import GatewayState
from bastion.proxy.aggregate import AggregateServer
from bastion.proxy.proxy import ProxyServer
from bastion.relay import relay_enabled
from bastion.stdio_pipes import loop_driven_stdio
from bastion.stores import open_admin_token_store as open_admin_token_store

if TYPE_CHECKING:
    from bastion.approvals.events import EventSink
    from bastion.guard.pipeline import Check
    from bastion.model import Principal
    from bastion.observability.wiring import GatewayObservability
    from bastion.runtime.egress.proxy import ResolverForTests
    from bastion.runtime.events import RuntimeEventSink
    from bastion.runtime.prestart import PrestartedServer


class Gateway(GatewayState):
    """Everything one Bastion process runs. Use `async with gateway.running(): ...`."""

    def __init__(
        self,
        config: BastionConfig,
        *,
        checks: Sequence[Check] | None = None,
        local_principal: Principal | None = None,
        errlog: TextIO | None = None,
        events: EventSink | None = None,
        runtime_sink: RuntimeEventSink | None = None,
        test_resolver: ResolverForTests | None = None,
        observability: GatewayObservability | None = None,
        prestarted: Mapping[str, PrestartedServer] | None = None,
    ) -> None:
        """Nothing is built yet: `running()` assembles the gateway (`compose.assemble`)."""
        options = GatewayOptions(
            checks=checks,
            local_principal=local_principal,
            errlog=errlog,
            events=events,
            runtime_sink=runtime_sink,
            test_resolver=test_resolver,
            observability=observability,
            prestarted=dict(prestarted or {}),
        )
        super().__init__(config, options)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Build the gateway, open its stores and start every upstream; stop them all on exit."""
        async with AsyncExitStack() as stack:
            await assemble(self, stack)
            yield self

    async def serve_http(self, *, ready: anyio.Event | None = None, handle_signals: bool = True) -> None:
        """Serve every server over HTTP until SIGINT/SIGTERM (with `handle_signals`) or cancellation.

        The listening socket is bound before `ready` is set, so a client may connect as
        soon as it is; `bound_port` tells the port when the config asked for port 0.
        `handle_signals=False` leaves SIGINT and SIGTERM to the program that embeds the
        gateway (a test run's Ctrl-C then interrupts at once instead of stopping only the
        gateway, and is not lost when the serving is cancelled before uvicorn re-raises it).
        """
        # The HTTP front door (uvicorn, starlette) is loaded here: `bastion wrap` never needs it.
        import uvicorn

        from bastion.front.embedded_server import EmbeddedServer
        from bastion.front.http_app import AGGREGATE_NAME, GatewayApp, ServerEndpoint
        from bastion.front.listening import bind_socket, running_url_file, stop_listening
        from bastion.front.proxy_trust import uvicorn_proxy_options
        from bastion.front.status_key import status_key_file, write_status_key
        from bastion.relay.host_checks import transport_security

        config = self.config
        security = transport_security(config.host, config.public_url)
        served: dict[str, ProxyServer | AggregateServer] = {**self.servers, **self.virtual_servers}
        relay = relay_enabled()
        endpoints = {
            name: ServerEndpoint(server, max_body_bytes=config.max_body_bytes, security=security, relay=relay)
            for name, server in served.items()
        }
        aggregate = None
        if self.aggregate is not None:
            aggregate = ServerEndpoint(
                self.aggregate, max_body_bytes=config.max_body_bytes, security=security, relay=relay
            )
        sock = bind_socket(config.host, config.port)
        self.bound_port = sock.getsockname()[1]
        sockets = [sock]
        metrics_address = self.observability.listener_wanted
        if metrics_address is not None:
            try:
                sockets.append(bind_socket(*metrics_address))
            except OSError:
                sock.close()
                raise
            self.observability.listening_on(sockets[-1].getsockname()[:2])
        url_file = running_url_file(config)
        # With every store in PostgreSQL and no stdio server, nothing else creates data_dir.
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text(self.base_url + "\n", encoding="utf-8")
        key_file = status_key_file(config)
        self.status_key = write_status_key(key_file)
        uv_config = uvicorn.Config(
            GatewayApp(self, endpoints, aggregate),
            lifespan="off",
            ws="none",  # no WebSocket route: the websockets library stays unimported
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            **uvicorn_proxy_options(config.trusted_proxies),
        )
        server = uvicorn.Server(uv_config) if handle_signals else EmbeddedServer(uv_config)
        self._endpoints = endpoints if aggregate is None else {**endpoints, AGGREGATE_NAME: aggregate}
        try:
            # Each session manager runs in a task of its own, not in this one: a manager whose
            # task group fails is replaced (see kept_manager), and does not cancel the serving.
            # Each starts with its first request (the relay serves most; see kept_manager).
            async with anyio.create_task_group() as managers:
                for endpoint in self._endpoints.values():
                    endpoint.manager.serve_in(managers)
                if ready is not None:
                    ready.set()
                try:
                    await server.serve(sockets=sockets)
                except BaseException:
                    # Serving was cancelled (a failure elsewhere is taking the gateway down):
                    # uvicorn skips its shutdown then, so stop taking requests now rather than
                    # answer them with half the gateway gone.
                    stop_listening(server)
                    raise
                managers.cancel_scope.cancel()
        finally:
            for endpoint in self._endpoints.values():
                if endpoint.relay is not None:
                    await endpoint.relay.close()
                if endpoint.relay_sse is not None:
                    await endpoint.relay_sse.close()
            self._endpoints = {}
            self.observability.listening_on(None)
            for listening in sockets:
                listening.close()
            url_file.unlink(missing_ok=True)
            key_file.unlink(missing_ok=True)

    async def serve_stdio(self, server_name: str | None) -> None:
        """Serve one server (None: every server, as `/mcp`) to the agent on stdin/stdout (`bastion wrap`)."""
        server: ProxyServer | AggregateServer | None = (
            self.servers[server_name] if server_name is not None else self.aggregate
        )
        assert server is not None, "serve_stdio runs inside running()"
        async with loop_driven_stdio() as (stdin, stdout):
            principal = self.local_principal
            if stdin is not None and principal is not None and relay_enabled():
                # Over pipes, Bastion's own relay serves the agent, in either era, for one server
                # or all (`--all`); the SDK's stack is the reference (`BASTION_RELAY=0`).
                from bastion.relay.aggregate import AggregateRelay
                from bastion.relay.flow_server import FlowServer
                from bastion.relay.relay import Relay
                from bastion.relay.stdio_front import StdioFront

                served: FlowServer = (
                    Relay(server, server.recorder) if isinstance(server, ProxyServer) else AggregateRelay(server)
                )
                await StdioFront(served, principal).serve(stdin, stdout)
                return
            from mcp.server.stdio import stdio_server

            async with stdio_server(stdin, stdout) as (read, write):
                sdk = server.sdk
                await sdk.run(read, write, sdk.create_initialization_options())
