"""The `bastion` command. Each subcommand is thin: it parses, then calls the library.

Command groups are imported when they are run (`LazyGroup`), and the gateway only by the
commands that start one, so a command such as `bastion audit export` does not pay for
importing the MCP SDK, the web stack and the policy catalogue (about 2 s of CPU and 75 MB).
"""

from __future__ import annotations

import getpass
import importlib
import os
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import click
from pydantic import ValidationError

from bastion import __version__
from bastion.audit.store import AuditStoreError
from bastion.cli import collector
from bastion.cli.common import (
    DEFAULT_CONFIG,
    config_option,
    fail_config,
    load_or_exit,
    log_format_option,
    setup_logging,
)
from bastion.config import BastionConfig, ConfigError, StdioServerConfig, config_for_wrap, default_config_text
from bastion.model import LOCAL_PRINCIPAL_VIA, Principal
from bastion.state.errors import StateStoreUnavailable, redacted_url
from bastion.stores import audit_url, open_token_store

if TYPE_CHECKING:
    from bastion.gateway.gateway import Gateway
    from bastion.runtime.prestart import PrestartedServer

try:
    import uvloop  # noqa: F401  (its presence is the switch)

    EVENT_LOOP_OPTIONS: dict[str, object] = {"use_uvloop": True}
except ImportError:  # not installed on this platform (Windows): the standard asyncio loop
    EVENT_LOOP_OPTIONS = {}


SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "token": ("bastion.cli.tokens", "token_group"),
    "limits": ("bastion.cli.limits", "limits_command"),
    "tools": ("bastion.cli.tools", "tools_group"),
    "audit": ("bastion.cli.audit", "audit_group"),
    "servers": ("bastion.cli.servers", "servers"),
    "doctor": ("bastion.cli.doctor", "doctor"),
    "policy": ("bastion.cli.policy", "policy_group"),
    "approvals": ("bastion.cli.approvals", "approvals_group"),
    "admin": ("bastion.cli.admin", "admin_group"),
    "connect": ("bastion.cli.connect", "connect"),
}
"""Command name -> (module, attribute) of the commands imported only when used."""


class LazyGroup(click.Group):
    """A click group whose `SUBCOMMANDS` are imported on first use (help lists them all).

    An unreachable shared database is reported as a one-line error, not a traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StateStoreUnavailable as exc:
            raise click.ClickException(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module, attribute = SUBCOMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="bastion")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Bastion: a secure runtime for MCP servers. Every tool call authenticated, checked and audited."""
    if ctx.invoked_subcommand not in GATEWAY_COMMANDS:  # those turn it on once their gateway runs
        collector.resume()


GATEWAY_COMMANDS = frozenset({"up", "wrap"})
"""The commands that run a gateway: the cycle collector stays paused until it is built (`collector.py`)."""


@main.command()
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
@log_format_option
def up(config_path: Path, verbose: bool, log_format: str | None) -> None:
    """Start the gateway. Writes an example bastion.yaml first if there is none."""
    setup_logging(verbose, log_format)
    if not config_path.exists():
        config_path.write_text(default_config_text(), encoding="utf-8")
        click.echo(f"Wrote an example configuration to {config_path} (edit it to add your servers).")
    config = load_or_exit(config_path)
    if log_format is None and config.log_format is not None:
        setup_logging(verbose, config.log_format)
    first_token = _first_run_token(config)
    gateway = _gateway_class()(config)

    async def run() -> None:
        async with gateway.running():
            collector.resume()
            ready = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_announce, gateway, ready, first_token)
                await gateway.serve_http(ready=ready)
                tg.cancel_scope.cancel()

    # uvicorn re-raises the SIGTERM it caught once it has stopped serving; as an interrupt
    # (not the default, which ends the process on the spot) the gateway's own shutdown runs:
    # upstream sandboxes stopped, their cgroups and egress sockets removed, the audit flushed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        anyio.run(run, backend_options=EVENT_LOOP_OPTIONS)
    except ConfigError as exc:  # refused by a part the gateway builds as it starts (before the audit log opens)
        fail_config(exc)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        pass
    except BaseExceptionGroup as group:  # the interrupt, raised inside the task group
        _, rest = group.split(KeyboardInterrupt)
        if rest is not None:
            raise rest from None


def _gateway_class() -> type[Gateway]:
    """The gateway, imported by the commands that run one (with the cycle collector paused
    when run as the `bastion` program: `collector.py`)."""
    from bastion.gateway.gateway import Gateway

    return Gateway


def _first_run_token(config: BastionConfig) -> str | None:
    """On a fresh data folder, an agent token to start with (printed once, like any token)."""
    from bastion.auth.token_requests import token_created
    from bastion.cli.audit_events import record_events

    store = open_token_store(config)
    try:
        if store.list():
            return None
        agent = next(iter(config.agents), "default")
        info, token = store.create(agent)
        try:
            record_events(config, token_created(info))
        except AuditStoreError as exc:
            store.revoke(info.id)  # fail closed: no token exists without its audit record
            raise click.ClickException(f"cannot start: the audit log cannot be written ({exc})") from exc
        return token
    finally:
        store.close()


ROLES_HINT = (
    "roles: admin also manages agent tokens, tool changes and always-allow rules; "
    "approver (the default) also decides held calls; viewer only reads"
)


async def _announce(gateway: Gateway, ready: anyio.Event, token: str | None) -> None:
    await ready.wait()
    base = gateway.base_url
    click.echo(f"Bastion {__version__} is serving on {base}")
    for name, upstream in gateway.upstreams.items():
        click.echo(
            f"  {name:16} {base}/servers/{name}/mcp   (legacy SSE: {base}/servers/{name}/sse)  [{upstream.state}]"
        )
    for name in gateway.virtual_servers:
        click.echo(f"  {name:16} {base}/servers/{name}/mcp   (a virtual server: a tool set)")
    click.echo(f"  {'every server':16} {base}/mcp   (legacy SSE: {base}/sse)")
    url = audit_url(gateway.config)
    where = redacted_url(url) if url is not None else gateway.config.data_dir / "audit.db"
    click.echo(f"Audit log: {where}  (bastion audit export --config {gateway.config.source})")
    if gateway.config.database_url is not None:
        click.echo(f"Shared state (tokens, approvals, pins): {redacted_url(gateway.config.database_url)}")
    admin_hint = f"bastion admin token create --name NAME --role admin --config {gateway.config.source}"
    click.echo(f"Admin API: {base}/admin/api  ({admin_hint})")
    click.echo(f"  {ROLES_HINT}")
    click.echo(f"Dashboard: {base}/ui/  (sign in with an admin token)")
    metrics = gateway.observability.listener_address
    if metrics is not None:
        host = f"[{metrics[0]}]" if ":" in metrics[0] else metrics[0]
        click.echo(f"Metrics: http://{host}:{metrics[1]}/metrics  (no authentication; also {base}/metrics)")
    elif gateway.observability.endpoint is not None:
        click.echo(f"Metrics: {base}/metrics  (Prometheus format, for an admin token)")
    if token is not None:
        click.echo("Agent token (shown only now; send it as 'Authorization: Bearer <token>'):")
        click.echo(token)
    else:
        click.echo("Agent tokens: bastion token create --config FILE --agent NAME")


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="bastion.yaml (default: ./bastion.yaml if present).",
)
@click.option(
    "--server",
    "server_name",
    default=None,
    envvar="BASTION_SERVER",
    help="Serve this configured server instead of a command (or $BASTION_SERVER).",
)
@click.option(
    "--all",
    "every",
    is_flag=True,
    envvar="BASTION_WRAP_ALL",
    help="Serve every configured server as one (the aggregate endpoint /mcp over stdio; or $BASTION_WRAP_ALL=1).",
)
@click.option("--name", default=None, help="The name the wrapped command is audited under.")
@click.option("--allow-domain", "allow_domains", multiple=True, help="Let the command reach this name (repeat).")
@click.option("--writable", multiple=True, help="A path the command may write (repeat).")
@click.option("--read-only", "read_only", multiple=True, help="A path under /tmp or /run it may read (repeat).")
@click.option("--no-sandbox", is_flag=True, help="Run the command without a sandbox (logged as a warning).")
@click.option("-v", "--verbose", is_flag=True, help="Log everything to stderr (default: warnings and errors only).")
@log_format_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def wrap(
    config_path: Path | None,
    server_name: str | None,
    every: bool,
    name: str | None,
    allow_domains: tuple[str, ...],
    writable: tuple[str, ...],
    read_only: tuple[str, ...],
    no_sandbox: bool,
    verbose: bool,
    log_format: str | None,
    command: tuple[str, ...],
) -> None:
    """Put Bastion between a stdio agent and an MCP server: `bastion wrap -- CMD ARGS...`.

    Use it as the command in the agent's MCP config. Bastion launches CMD, checks and
    audits every request, and speaks MCP to the agent on stdin/stdout.

    \b
    Without --config, the audit log and state go to $BASTION_DATA_DIR, else
    $XDG_STATE_HOME/bastion, else ~/.local/state/bastion (never the folder the agent
    starts it in). Only warnings and errors are logged to stderr unless -v.
    """
    debug = verbose or bool(os.environ.get("BASTION_DEBUG"))
    setup_logging(debug, log_format, quiet=not debug)
    if every:
        if server_name is not None or command:
            raise click.UsageError("--all serves every configured server: leave out --server and the command")
        _wrap_every_server(config_path, debug, log_format)
        return
    if (server_name is None) == (not command):
        raise click.UsageError("give a command after -- or --server NAME (one of them)")
    sandbox: dict[str, Any] = {"writable": writable, "read_only": read_only}
    if allow_domains:
        sandbox |= {"network": "allowlist", "allow_domains": allow_domains}
    if no_sandbox:
        sandbox = {"enabled": False}
    if server_name is not None and (no_sandbox or allow_domains or writable or read_only):
        raise click.UsageError("sandbox options apply to a command after --; a --server has its own in the config")
    config = _wrap_config(config_path, server_name, name, list(command), sandbox)
    if log_format is None and config.log_format is not None:
        setup_logging(debug, config.log_format, quiet=not debug)
    served = server_name or next(iter(config.servers))
    if served not in config.servers:
        raise click.UsageError(
            f"no server named {served!r} in {config.source}; configured: {', '.join(config.servers)}"
        )
    principal = Principal(agent=f"local:{getpass.getuser()}", via=LOCAL_PRINCIPAL_VIA, credential_id="local")
    # One server, over stdio: no HTTP listener, so no /metrics to serve (prometheus_client stays unimported).
    no_metrics = config.metrics.model_copy(update={"enabled": False})
    only = config.model_copy(update={"servers": {served: config.servers[served]}, "metrics": no_metrics})
    # The server starts now, and boots while the gateway below is imported and set up.
    early = _prestart(only, served)
    try:
        gateway = _gateway_class()(only, local_principal=principal, prestarted={served: early} if early else None)

        async def run() -> None:
            async with gateway.running():
                collector.resume()
                await gateway.serve_stdio(served)

        try:
            anyio.run(run, backend_options=EVENT_LOOP_OPTIONS)
        except ConfigError as exc:  # refused by a part the gateway builds as it starts
            fail_config(exc)
    finally:
        if early is not None:
            early.discard()


def _wrap_every_server(config_path: Path | None, debug: bool, log_format: str | None) -> None:
    """`bastion wrap --all`: every configured server, as one (tools named `<server>__<tool>`), on stdio."""
    if config_path is None and not Path(os.environ.get("BASTION_CONFIG", DEFAULT_CONFIG)).exists():
        raise click.UsageError("--all needs a configuration file (--config FILE)")
    config = _wrap_config(config_path, None, None, [], {})
    if log_format is None and config.log_format is not None:
        setup_logging(debug, config.log_format, quiet=not debug)
    if not config.servers:
        raise click.UsageError(f"{config.source} configures no servers")
    principal = Principal(agent=f"local:{getpass.getuser()}", via=LOCAL_PRINCIPAL_VIA, credential_id="local")
    no_metrics = config.metrics.model_copy(update={"enabled": False})
    gateway = _gateway_class()(config.model_copy(update={"metrics": no_metrics}), local_principal=principal)

    async def run() -> None:
        async with gateway.running():
            collector.resume()
            await gateway.serve_stdio(None)

    try:
        anyio.run(run, backend_options=EVENT_LOOP_OPTIONS)
    except ConfigError as exc:  # refused by a part the gateway builds as it starts
        fail_config(exc)


def _prestart(config: BastionConfig, name: str) -> PrestartedServer | None:
    """Start the wrapped server's sandbox before the gateway is loaded (None: the gateway starts it)."""
    from bastion.runtime.command_paths import resolve_command
    from bastion.runtime.prestart import prestart
    from bastion.runtime.server_runtime import RuntimeSettings

    server = config.servers[name]
    if not isinstance(server, StdioServerConfig):
        return None
    config_file = config.source if config.source.is_file() else None
    settings = RuntimeSettings(config.data_dir, config_file=config_file)
    return prestart(name, server, settings, resolve_command(server.command), sys.stderr)


def _wrap_config(
    path: Path | None, server: str | None, name: str | None, command: list[str], sandbox: dict[str, Any]
) -> BastionConfig:
    if path is None and Path(os.environ.get("BASTION_CONFIG", DEFAULT_CONFIG)).exists():
        path = Path(os.environ.get("BASTION_CONFIG", DEFAULT_CONFIG))
    if path is None:
        if server is not None:
            raise click.UsageError("--server needs a configuration file (--config FILE)")
        config = config_for_wrap(command)
        config = config.model_copy(update={"data_dir": wrap_data_dir(os.environ)})
    else:
        config = load_or_exit(path)
    if command:
        try:
            stdio = StdioServerConfig.model_validate({"command": command[0], "args": command[1:], "sandbox": sandbox})
        except ValidationError as exc:
            raise click.UsageError(f"sandbox option: {exc.errors()[0]['msg']}") from None
        config = config.model_copy(update={"servers": {name or _name_for(command): stdio}})
    return config


def wrap_data_dir(environ: Mapping[str, str]) -> Path:
    """Where `bastion wrap` keeps its audit log without a config: `$BASTION_DATA_DIR`, else the
    per-user state folder (`$XDG_STATE_HOME/bastion`, else `~/.local/state/bastion`)."""
    explicit = environ.get("BASTION_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    state = environ.get("XDG_STATE_HOME", "")
    # The XDG spec: a relative value is invalid and must be ignored.
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "bastion"


def _name_for(command: list[str]) -> str:
    """An audit name for a wrapped command: its program, or the package it runs (npx, uvx)."""
    words = [w for w in command if not w.startswith("-")]
    runner = Path(words[0]).name if words else "wrapped"
    target = words[1] if runner in ("npx", "uvx", "pipx", "bunx") and len(words) > 1 else runner
    slug = re.sub(r"[^a-z0-9_-]+", "-", target.rsplit("/", 1)[-1].split("@")[0].lower()).strip("-_")
    return slug[:63] or "wrapped"


if __name__ == "__main__":
    sys.exit(main())  # `python -m bastion.cli.main`: the collector is not paused (`python -m bastion` pauses it)
