"""How the configured servers' tools and prompts are named at `/mcp` and in virtual servers.

A tool is exposed as `<prefix>__<tool>` (`exposed_names`), the prefix being the server's
`expose_as` or its name (`default_prefix`: runs of `_` made one, none at the ends), unless
its `tools.<name>.expose_as` names it outright. `hidden` tools are neither listed nor
callable here; `description` replaces the listed description (the guard checks still judge
the server's own definition). A virtual server further keeps only the tools whose exposed
names match one of its globs.

Prefixes are unique and hold no `__` (checked at load), so the first `__` of a generated
name ends its prefix: one server's tools cannot take another's names, however they are
named. An `expose_as` override wins over a generated name it equals.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from bastion.config import BastionConfig
from bastion.config_aggregate import ToolOverride, default_prefix
from bastion.proxy.exposed_names import exposed_name, may_be_from


class Catalogue:
    """The naming rules of one aggregate endpoint (`/mcp`, or one virtual server)."""

    def __init__(self, config: BastionConfig, patterns: Iterable[str] | None = None) -> None:
        self.order = tuple(config.servers)
        self.prefixes = {name: server.expose_as or default_prefix(name) for name, server in config.servers.items()}
        self.overrides: dict[str, Mapping[str, ToolOverride]] = {
            name: server.tools for name, server in config.servers.items()
        }
        self.renamed: dict[str, tuple[str, str]] = {
            override.expose_as: (server, tool)
            for server, tools in self.overrides.items()
            for tool, override in tools.items()
            if override.expose_as is not None
        }
        """Exposed name -> (server, tool), for tools with their own `expose_as`."""
        self.patterns = tuple(patterns) if patterns is not None else None
        """A virtual server's globs on exposed names; None: every tool (`/mcp`)."""

    def tool_name(self, server: str, tool: str) -> str | None:
        """The name tool `tool` of `server` is exposed as; None when it is hidden or outside the set."""
        override = self.overrides.get(server, {}).get(tool)
        if override is not None and override.hidden:
            return None
        if override is not None and override.expose_as is not None:
            name = override.expose_as
        else:
            name = exposed_name(self.prefixes[server], tool)
            if name in self.renamed:
                return None  # an `expose_as` took this name
        if self.patterns is not None and not any(fnmatch.fnmatchcase(name, p) for p in self.patterns):
            return None
        return name

    def expose_tool(self, server: str, tool: Mapping[str, Any]) -> dict[str, Any] | None:
        """The tool definition as listed here (renamed, maybe redescribed); None when not listed."""
        name = self.tool_name(server, str(tool.get("name")))
        if name is None:
            return None
        override = self.overrides.get(server, {}).get(str(tool.get("name")))
        exposed = {**tool, "name": name}
        if override is not None and override.description is not None:
            exposed["description"] = override.description
        return exposed

    def tool_owners(self, exposed: str) -> list[str]:
        """The servers that may expose a tool under `exposed`, in configuration order."""
        renamed = self.renamed.get(exposed)
        if renamed is not None:
            return [renamed[0]]
        return [name for name in self.order if may_be_from(self.prefixes[name], exposed)]

    def real_tool(self, server: str, exposed: str, tools: Iterable[str]) -> str | None:
        """Which of `server`'s tools is exposed as `exposed`, if any."""
        renamed = self.renamed.get(exposed)
        if renamed is not None:
            return renamed[1] if renamed[0] == server and self.tool_name(server, renamed[1]) == exposed else None
        for tool in tools:
            if self.tool_name(server, tool) == exposed:
                return tool
        return None

    def prompt_name(self, server: str, prompt: str) -> str:
        """Prompts are exposed as `<prefix>__<prompt>` (no per-prompt overrides)."""
        return exposed_name(self.prefixes[server], prompt)

    def prompt_owners(self, exposed: str) -> list[str]:
        return [name for name in self.order if may_be_from(self.prefixes[name], exposed)]
