"""What every command shares: loading the config, and turning a bad config into exit code 2."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from bastion.config import BastionConfig, ConfigError, load_config

DEFAULT_CONFIG = "bastion.yaml"

EXIT_CONFIG = 2
"""Exit code for a configuration problem (click also uses 2 for usage errors)."""

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("BASTION_CONFIG", DEFAULT_CONFIG),
    show_default="bastion.yaml, or $BASTION_CONFIG",
    help="The bastion.yaml to use.",
)


def load_or_exit(path: Path) -> BastionConfig:
    """The config at `path`, or a readable error and exit code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        fail_config(exc)


def fail_config(exc: ConfigError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    for more in exc.also:
        click.echo(f"error: {more}", err=True)
    sys.exit(EXIT_CONFIG)


def setup_logging(verbose: bool, log_format: str | None = None, *, quiet: bool = False) -> None:
    """Log to stderr: debug detail with `verbose`, else INFO (WARNING and up when `quiet`).

    `json` lines carry the ids of the call being handled.
    """
    from bastion.observability.logs import configure_logging

    context = None
    if log_format == "json":
        from bastion.proxy.recording import call_log_context

        context = call_log_context
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    configure_logging(level, "json" if log_format == "json" else "text", context=context)


log_format_option = click.option(
    "--log-format",
    "log_format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text (default) or JSON objects (overrides the config's log_format).",
)
