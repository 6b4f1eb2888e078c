"""`bastion servers logs NAME`: what a server printed on its stderr (its log file under `data_dir`)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import click
from click.core import ParameterSource

from bastion.cli.common import config_option, load_or_exit
from bastion.config import StdioServerConfig
from bastion.runtime.server_log import clean_line, server_log_path, tail_lines

FOLLOW_INTERVAL = 0.5


@click.command("logs")
@click.argument("name")
@click.option(
    "-n", "--lines", "count", type=click.IntRange(min=0), default=50, show_default=True, help="How many lines to show."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as the server writes them (Ctrl-C stops).")
@config_option
@click.pass_context
def server_logs(ctx: click.Context, name: str, count: int, follow: bool, config_path: Path) -> None:
    """Show the last lines server NAME printed on stderr (control characters removed)."""
    parent = ctx.parent
    if ctx.get_parameter_source("config_path") == ParameterSource.DEFAULT and parent is not None:
        config_path = parent.params.get("config_path", config_path)
    config = load_or_exit(config_path)
    server = config.servers.get(name)
    if server is None:
        configured = ", ".join(config.servers) or "none"
        raise click.UsageError(f"no server named {name!r} in {config.source}; configured: {configured}")
    if not isinstance(server, StdioServerConfig):
        raise click.UsageError(f"server {name!r} is remote ({server.url}): Bastion does not run it, so keeps no log")
    path = server_log_path(config.data_dir, name)
    end = _end(path)
    for line in tail_lines(config.data_dir, name, count, upto=end[0]):
        click.echo(line)
    if not follow:
        if not path.exists():
            click.echo(f"(server {name!r} has printed nothing on stderr yet: {path})", err=True)
        return
    with contextlib.suppress(KeyboardInterrupt):
        _follow(path, *end)


def _follow(path: Path, position: int, identity: tuple[int, int] | None) -> None:
    """Print lines appended to `path` from `position` on, across rotations."""
    while True:
        time.sleep(FOLLOW_INTERVAL)
        size, current = _end(path)
        if current != identity or size < position:  # rotated (or truncated): the new file from its start
            position, identity = 0, current
        if size <= position:
            continue
        with path.open("rb") as file:
            file.seek(position)
            data = file.read(size - position)
        complete = data.rfind(b"\n") + 1  # a half-written last line waits for its end
        for line in data[:complete].removesuffix(b"\n").split(b"\n") if complete else []:
            click.echo(clean_line(line))
        position += complete


def _end(path: Path) -> tuple[int, tuple[int, int] | None]:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return 0, None
    return status.st_size, (status.st_dev, status.st_ino)
