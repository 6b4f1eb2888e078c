"""`bastion audit export`: the audit log as JSON Lines."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bastion.audit import open_audit_store
from bastion.audit.export import write_jsonl
from bastion.cli.common import config_option, load_or_exit


@click.group("audit")
def audit_group() -> None:
    """Read the audit log."""


@audit_group.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File (default: stdout).")
def export(config_path: Path, fmt: str, output: Path | None) -> None:
    """Print every audit record, oldest first, one JSON object a line."""
    config = load_or_exit(config_path)
    store = open_audit_store(config.data_dir)
    if not store.path.exists():
        raise click.ClickException(f"no audit log at {store.path}; has this gateway served any request yet?")
    records = store.export()
    if output is None:
        count = write_jsonl(records, sys.stdout)
    else:
        with output.open("w", encoding="utf-8") as out:
            count = write_jsonl(records, out)
    click.echo(f"exported {count} record(s)", err=True)
