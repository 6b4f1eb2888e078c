"""The bastion.yaml keys of the aggregate endpoint `/mcp` and of virtual servers.

Per server: `expose_as` (the prefix its tools and prompts get at `/mcp`, default its name) and
`tools` (per tool: `expose_as`, `description`, `hidden`). Top level: `virtual_servers`, named
tool sets served at `/servers/<name>/mcp`. Reference: docs/configuration.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.config_errors import config_problem

EXPOSED_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A tool name every major model API accepts: letters, digits, `_` and `-`, at most 64 characters."""

PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:_[A-Za-z0-9-]+)*")
"""An `expose_as` prefix: a name with no `__` (the separator) and no leading or trailing `_`."""


class ToolOverride(BaseModel):
    """How one tool of a server shows at `/mcp` and in virtual servers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expose_as: str | None = None
    """The whole name the tool is listed and called by, instead of `<prefix>__<tool>`."""
    description: str | None = None
    """Replaces the server's description of the tool in the listing (checks still read the server's)."""
    hidden: bool = False
    """Not listed nor callable through `/mcp` and virtual servers (its own server's endpoint still serves it)."""

    @field_validator("expose_as")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        if name is not None and not EXPOSED_NAME.fullmatch(name):
            raise config_problem(
                f"`{name}` is not a valid tool name for model APIs",
                "use 1-64 letters, digits, `_` or `-`",
            )
        return name


class VirtualServerConfig(BaseModel):
    """A named tool set: the tools of `/mcp` whose exposed names match one of `tools` (globs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: tuple[str, ...] = Field(min_length=1)
    """Glob patterns on exposed names (`crm__lookup_*`, `time__*`)."""

    @field_validator("tools")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            if not pattern.strip():
                raise config_problem("has an empty pattern", "write a glob on exposed names, e.g. `time__*`")
        return patterns


def check_prefix(prefix: str | None) -> str | None:
    """Validate a server's `expose_as` (raises a config problem naming the fix)."""
    if prefix is not None and (len(prefix) > 48 or not PREFIX.fullmatch(prefix)):
        raise config_problem(
            f"`{prefix}` is not a valid prefix",
            "use 1-48 letters, digits, `-` or single `_` (no `__`, which separates prefix and tool)",
        )
    return prefix


def default_prefix(server: str) -> str:
    """A server's prefix when it has no `expose_as`: its name, with runs of `_` made one `_`,
    no `_` at either end, and at most 48 characters (most names are already such a prefix)."""
    return re.sub(r"_+", "_", server)[:48].strip("_")


def check_exposed_names(
    servers: Mapping[str, tuple[str | None, Mapping[str, ToolOverride]]],
    virtual_servers: Iterable[str],
) -> None:
    """Refuse prefixes two servers share, tool names two overrides share, virtual names servers own.

    A prefix has no `__` and no `_` at either end (`default_prefix` makes one of any server
    name), so `<prefix>__` ends where the first `__` of an exposed name is: no server's tool
    can take a name another server's tools have.
    """
    owners: dict[str, str] = {}
    for name, (expose_as, _) in servers.items():
        prefix = expose_as or default_prefix(name)
        if prefix in owners:
            raise config_problem(
                f"prefix `{prefix}` is also the prefix of server `{owners[prefix]}`",
                "give one of them another `expose_as`",
                "servers",
                name,
                "expose_as",
            )
        owners[prefix] = name
    renamed: dict[str, str] = {}
    for name, (_, tools) in servers.items():
        for tool, override in tools.items():
            if override.expose_as is None:
                continue
            if override.expose_as in renamed:
                raise config_problem(
                    f"`{override.expose_as}` is already the exposed name of {renamed[override.expose_as]}",
                    "give each tool its own `expose_as`",
                    "servers",
                    name,
                    "tools",
                    tool,
                    "expose_as",
                )
            head = override.expose_as.partition("__")[0]
            other = next((o for p, o in owners.items() if p == head and o != name), None)
            if "__" in override.expose_as and other is not None:
                raise config_problem(
                    f"`{override.expose_as}` is a name of server `{other}`'s tools (prefix `{head}__`)",
                    "choose a name without another server's prefix",
                    "servers",
                    name,
                    "tools",
                    tool,
                    "expose_as",
                )
            renamed[override.expose_as] = f"tool `{tool}` of server `{name}`"
    for virtual in virtual_servers:
        if virtual in servers:
            raise config_problem(
                "has the name of a configured server (both would be served at the same URL)",
                "rename the virtual server",
                "virtual_servers",
                virtual,
            )
