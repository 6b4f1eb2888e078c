"""`bastion doctor`: what this host supports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bastion.cli.common import config_option
from bastion.config import ConfigError, load_config
from bastion.runtime.host import inspect_host


@click.command()
@config_option
def doctor(config_path: Path) -> None:
    """Report what this host supports (sandbox, limits, runtimes, storage). Exit 1 if a requirement fails."""
    data_dir = None
    if config_path.exists():
        try:
            data_dir = load_config(config_path).data_dir
            click.echo(f"config       ok    {config_path}")
        except ConfigError as exc:
            click.echo(f"config       FAIL  {exc}")
    findings = inspect_host(data_dir)
    for finding in findings:
        status = "ok" if finding.ok else ("FAIL" if finding.required else "no")
        click.echo(f"{finding.name:12} {status:5} {finding.detail}")
    if any(f.required and not f.ok for f in findings):
        sys.exit(1)
