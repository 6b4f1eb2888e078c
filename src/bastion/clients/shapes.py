"""Each supported client's configuration: where its file is, where servers go in it, and an entry's shape.

The shapes follow each client's own documentation:

- OpenClaw: `mcp.servers.<name>` in `~/.openclaw/openclaw.json`, `url` with
  `transport: "streamable-http"` and `headers` (without `transport` it tries legacy SSE
  first), or `command`/`args`.
- Claude Desktop: `mcpServers.<name>` in `claude_desktop_config.json`; it launches commands
  only, so its entry is the `bastion wrap` form.
- Claude Code: `mcpServers.<name>` in a project's `.mcp.json`, `type: "http"` with `url` and
  `headers`, or `type: "stdio"` with `command`/`args` (`claude mcp add` writes the same).
- Cursor: `mcpServers.<name>` in `~/.cursor/mcp.json`, `url` and `headers`, or `command`/`args`.
- VS Code: `servers.<name>` in a workspace's `.vscode/mcp.json`, `type: "http"` with `url`
  and `headers`, or `type: "stdio"` with `command`/`args`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Transport = Literal["http", "stdio"]


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """A Bastion URL and the bearer token that reaches it."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class StdioTarget:
    """The `bastion wrap` command line that serves one configured server over stdio."""

    command: str
    args: tuple[str, ...]


Target = HttpTarget | StdioTarget


@dataclass(frozen=True, slots=True)
class Client:
    """One client: its name, its config file, and the path of keys its servers live under."""

    name: str
    title: str
    servers_key: tuple[str, ...]
    transports: tuple[Transport, ...]
    """What it can use, preferred first."""
    project_file: str | None = None
    """A config file relative to the current folder (a project's), when the client keeps one there."""

    def default_file(self, home: Path, environ: Mapping[str, str], platform: str = sys.platform) -> Path:
        """Where the client reads its servers (`--file` overrides)."""
        if self.project_file is not None:
            return Path.cwd() / self.project_file
        if self.name == "openclaw":
            return Path(environ.get("OPENCLAW_CONFIG_PATH") or home / ".openclaw" / "openclaw.json")
        if self.name == "cursor":
            return home / ".cursor" / "mcp.json"
        # Claude Desktop
        if platform == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if platform == "win32":
            return Path(environ.get("APPDATA", home / "AppData" / "Roaming")) / "Claude" / "claude_desktop_config.json"
        config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        return config_home / "Claude" / "claude_desktop_config.json"

    def entry(self, target: Target) -> dict[str, Any]:
        """The client's entry for `target`."""
        if isinstance(target, StdioTarget):
            entry: dict[str, Any] = {"command": target.command, "args": list(target.args)}
            return {"type": "stdio", **entry} if self.name in ("claude-code", "vscode") else entry
        if self.name == "openclaw":
            return {"url": target.url, "transport": "streamable-http", "headers": target.headers}
        if self.name in ("claude-code", "vscode"):
            return {"type": "http", "url": target.url, "headers": target.headers}
        return {"url": target.url, "headers": target.headers}

    def command_line(self, name: str, target: Target) -> str | None:
        """The client's own command that adds the entry, when it has one (Claude Code)."""
        if self.name != "claude-code":
            return None
        if isinstance(target, StdioTarget):
            return shlex.join(["claude", "mcp", "add", name, "--", target.command, *target.args])
        header = f"Authorization: Bearer {target.token}"
        return shlex.join(["claude", "mcp", "add", "--transport", "http", name, target.url, "--header", header])


CLIENTS: dict[str, Client] = {
    client.name: client
    for client in (
        Client("openclaw", "OpenClaw", ("mcp", "servers"), ("http", "stdio")),
        Client("claude-desktop", "Claude Desktop", ("mcpServers",), ("stdio",)),
        Client("claude-code", "Claude Code", ("mcpServers",), ("http", "stdio"), project_file=".mcp.json"),
        Client("cursor", "Cursor", ("mcpServers",), ("http", "stdio")),
        Client("vscode", "VS Code", ("servers",), ("http", "stdio"), project_file=os.path.join(".vscode", "mcp.json")),
    )
}
