"""`bastion doctor`: what this host supports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bastion.cli.common import config_option
from bastion.config import ConfigError, load_config
from bastion.runtime.host import inspect_host
from bastion.stores import StateStoreUnavailable


@click.command()
@config_option
def doctor(config_path: Path) -> None:
    """Report what this host supports (sandbox, limits, runtimes, storage). Exit 1 if a requirement fails."""
    data_dir = None
    database_ok = True
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
    if any(f.required and not f.ok for f in findings) or not database_ok:
        sys.exit(1)


def _database(url: str) -> bool:
    """Report the shared database (`database_url`); False when the gateway could not start on it."""
    try:
        from bastion.postgres.database import probe

        click.echo(f"database     ok    {probe(url)}")
        return True
    except (ImportError, StateStoreUnavailable) as exc:
        click.echo(f"database     FAIL  {exc}")
        return False
