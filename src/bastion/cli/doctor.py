"""`bastion doctor`: what this host supports, and whether each configured server's sandbox starts."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bastion.cli.common import config_option
from bastion.config import BastionConfig, ConfigError, StdioServerConfig, load_config
from bastion.runtime.host import inspect_host
from bastion.state.errors import StateStoreUnavailable


@click.command()
@config_option
def doctor(config_path: Path) -> None:
    """Report what this host supports (sandbox, limits, runtimes, storage) and start each configured
    server's sandbox up to the exec, saying what would fail and the fix. Exit 1 if anything required fails."""
    data_dir = None
    database_ok = True
    config: BastionConfig | None = None
    if config_path.exists():
        try:
            config = load_config(config_path)
            data_dir = config.data_dir
            click.echo(f"config       ok    {config_path}")
            if config.database_url is not None:
                database_ok = _database(config.database_url)
        except ConfigError as exc:
            click.echo(f"config       FAIL  {exc}")
    findings = inspect_host(data_dir)
    for finding in findings:
        status = "ok" if finding.ok else ("FAIL" if finding.required else "no")
        click.echo(f"{finding.name:12} {status:5} {finding.detail}")
    servers_ok = _servers(config) if config is not None else True
    if any(f.required and not f.ok for f in findings) or not database_ok or not servers_ok:
        sys.exit(1)


def _servers(config: BastionConfig) -> bool:
    """Start each stdio server's sandbox (its command replaced by a check); False when one would fail."""
    from bastion.runtime.command_paths import resolve_command
    from bastion.runtime.server_probe import probe_server
    from bastion.runtime.server_runtime import RuntimeSettings

    config_file = config.source if config.source.is_file() else None
    settings = RuntimeSettings(config.data_dir, config_file=config_file)
    ok = True
    for name, server in config.servers.items():
        if not isinstance(server, StdioServerConfig):
            continue
        probe = probe_server(name, server, settings, resolve_command(server.command))
        ok = ok and probe.ok
        click.echo(f"{'server ' + name:12} {'ok' if probe.ok else 'FAIL':5} {probe.detail}")
    return ok


def _database(url: str) -> bool:
    """Report the shared database (`database_url`); False when the gateway could not start on it."""
    try:
        from bastion.state.postgres.database import probe

        click.echo(f"database     ok    {probe(url)}")
        return True
    except (ImportError, StateStoreUnavailable) as exc:
        click.echo(f"database     FAIL  {exc}")
        return False
