"""`bastion servers`: the configured upstreams, and their state in the running gateway."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from bastion.cli.common import config_option, load_or_exit
from bastion.config import StdioServerConfig
from bastion.gateway.gateway import running_url_file


@click.command()
@config_option
def servers(config_path: Path) -> None:
    """List upstream servers and their state (asks the running gateway at its /readyz)."""
    config = load_or_exit(config_path)
    url_file = running_url_file(config)
    base_url = url_file.read_text(encoding="utf-8").strip() if url_file.exists() else config.base_url
    states = _running_states(f"{base_url}/readyz")
    if states is None:
        click.echo(f"The gateway is not running at {base_url} (start it with: bastion up).")
    click.echo(f"{'NAME':16} {'STATE':8} {'KIND':6} TARGET")
    for name, server in config.servers.items():
        if isinstance(server, StdioServerConfig):
            kind, target = "stdio", " ".join([server.command, *server.args])
        else:
            kind, target = server.transport, server.url
        state = states.get(name, "unknown") if states is not None else "-"
        click.echo(f"{name:16} {state:8} {kind:6} {target}")


def _running_states(url: str) -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body: Any = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    except (OSError, ValueError):
        return None
    states = body.get("servers") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in states.items()} if isinstance(states, dict) else None
