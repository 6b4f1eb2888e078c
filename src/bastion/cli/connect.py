"""`bastion connect CLIENT`: a token and a ready configuration entry for the agents people use.

Prints the client's entry (and, for Claude Code, its `claude mcp add` line), or with
`--write` merges it into the client's config file (see `bastion.clients.config_file`).
Every server (`--all`, the default) is ONE entry, `bastion`: the aggregate endpoint `/mcp`
(over stdio, `bastion wrap --all`); `--server NAME` gives an entry per named server.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from bastion.auth.token_requests import parse_lifetime
from bastion.cli.common import config_option, load_or_exit
from bastion.cli.running_gateway import running_base_url
from bastion.cli.tokens import issue_token
from bastion.clients.config_file import ClientConfigError, read_config, write_entries
from bastion.clients.shapes import CLIENTS, Client, HttpTarget, StdioTarget, Target
from bastion.config import BastionConfig
from bastion.stores import open_token_store

AGGREGATE_ENTRY = "bastion"
"""The entry's name when it is the aggregate endpoint `/mcp` (every server)."""


@click.command("connect")
@click.argument("client_name", metavar="CLIENT", type=click.Choice(sorted(CLIENTS)))
@config_option
@click.option("--server", "servers", multiple=True, help="A server to connect (repeat); default: every server.")
@click.option("--all", "every", is_flag=True, help="Every configured server (the default).")
@click.option("--agent", default=None, help="The agent's name in the audit log (default: the client's name).")
@click.option("--expires", default=None, help="Token lifetime, e.g. 30d, 12h (default: never).")
@click.option(
    "--stdio", is_flag=True, help="The `bastion wrap` form (no token), for clients that only launch commands."
)
@click.option("--write", is_flag=True, help="Merge the entries into the client's config file (backup first, 0600).")
@click.option(
    "--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="The client's config file."
)
def connect(
    client_name: str,
    config_path: Path,
    servers: tuple[str, ...],
    every: bool,
    agent: str | None,
    expires: str | None,
    stdio: bool,
    write: bool,
    file: Path | None,
) -> None:
    """Set up CLIENT (openclaw, claude-desktop, claude-code, cursor, vscode) to reach Bastion.

    Mints a token for the agent, scoped to the servers asked for, and prints the client's
    configuration entry: one for every server (`/mcp`), or one per `--server`; `--write`
    merges them into the client's file instead, keeping every other entry (run it again:
    nothing changes, no new token).
    """
    client = CLIENTS[client_name]
    config = load_or_exit(config_path)
    if every and servers:
        raise click.UsageError("give --server NAME (repeatable) or --all, not both")
    names = list(servers) or list(config.servers)
    known = [*config.servers, *config.virtual_servers]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.BadParameter(f"no server named {unknown[0]!r}; configured: {', '.join(known)}")
    if not names:
        raise click.UsageError(f"{config.source} configures no servers")
    transport = "stdio" if stdio or "http" not in client.transports else "http"
    if stdio and "stdio" not in client.transports:
        raise click.UsageError(f"{client.title} does not launch commands; leave out --stdio")
    virtual = [name for name in names if name in config.virtual_servers]
    if transport == "stdio" and virtual:
        raise click.UsageError(f"virtual server {virtual[0]!r} is served over HTTP only; leave out --stdio")
    path = file if file is not None else client.default_file(Path.home(), os.environ)
    agent_name = agent or client.name
    targets = _targets(
        config, client, names, transport, agent_name, expires, path if write else None, explicit=bool(servers)
    )
    entries = {name: client.entry(target) for name, target in targets.items()}
    if write:
        try:
            written = write_entries(path, client.servers_key, entries)
        except (ClientConfigError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        if written.changed:
            backup = f" (the previous file is in {written.backup})" if written.backup else ""
            click.echo(f"Wrote {len(entries)} server(s) to {client.title}'s {written.path}{backup}.")
        else:
            click.echo(f"{client.title}'s {written.path} already has these entries; nothing changed.")
        click.echo(f"Restart or reload {client.title} to pick them up.")
        return
    for name, target in targets.items():
        line = client.command_line(name, target)
        if line is not None:
            click.echo(line)
    snippet: dict[str, Any] = entries
    for key in reversed(client.servers_key):
        snippet = {key: snippet}
    also = " (or run the command above)" if client.name == "claude-code" else ""
    click.echo(f"# {client.title}: add to {path}{also}")
    click.echo(json.dumps(snippet, indent=2))


def _targets(
    config: BastionConfig,
    client: Client,
    names: list[str],
    transport: str,
    agent: str,
    expires: str | None,
    existing_file: Path | None,
    *,
    explicit: bool,
) -> dict[str, Target]:
    if transport == "stdio":
        bastion = _bastion_command()
        source = str(config.source.resolve())
        if not explicit:  # every server as one: `bastion wrap --all` serves /mcp over stdio
            return {AGGREGATE_ENTRY: StdioTarget(bastion, ("wrap", "--all", "--config", source))}
        return {name: StdioTarget(bastion, ("wrap", "--server", name, "--config", source)) for name in names}
    base = _base_url(config)
    entries = names if explicit else [AGGREGATE_ENTRY]
    reused = None
    if existing_file is not None:
        reused = _reusable_token(config, client, names, entries, agent, existing_file, explicit=explicit)
    token = reused
    if token is None:
        try:
            lifetime = parse_lifetime(expires)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from None
        scope = names if explicit else None  # --all: every server, those added later too
        info, token = issue_token(config, agent, scope, lifetime)
        reach = ", ".join(sorted(info.servers)) if info.servers is not None else "all servers"
        click.echo(f"Created token {info.id} for agent {agent!r} ({reach}).", err=True)
    if not explicit:  # one URL for every server the token reaches: the aggregate endpoint
        return {AGGREGATE_ENTRY: HttpTarget(f"{base}/mcp", token)}
    return {name: HttpTarget(f"{base}/servers/{name}/mcp", token) for name in names}


def _reusable_token(
    config: BastionConfig,
    client: Client,
    names: list[str],
    entries: list[str],
    agent: str,
    path: Path,
    *,
    explicit: bool,
) -> str | None:
    """The token the file's entries already carry, when every entry has the same live one for `agent`."""
    try:
        document = read_config(path)
    except ClientConfigError:
        return None
    node: Any = document
    for key in client.servers_key:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    tokens = set()
    for name in entries:
        entry = node.get(name)
        header = entry.get("headers", {}).get("Authorization", "") if isinstance(entry, dict) else ""
        tokens.add(header.removeprefix("Bearer ").strip() if isinstance(header, str) else "")
    if len(tokens) != 1 or not (token := tokens.pop()):
        return None
    store = open_token_store(config)
    try:
        principal = store.verify(token)
    finally:
        store.close()
    if principal is None or principal.agent != agent:
        return None
    wanted = frozenset(names) if explicit else None
    if principal.servers != wanted:
        return None
    return token


def _base_url(config: BastionConfig) -> str:
    """Where agents reach the gateway: `public_url`, else the running gateway's URL."""
    return config.public_url.rstrip("/") if config.public_url else running_base_url(config)


def _bastion_command() -> str:
    """The `bastion` executable of this installation (an absolute path: clients have their own PATH)."""
    beside = Path(sys.executable).parent / "bastion"
    if beside.exists():
        return str(beside)
    found = shutil.which("bastion")
    return str(Path(found).resolve()) if found else "bastion"
