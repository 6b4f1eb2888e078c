"""What an agent is told a served MCP server is: its name, version and capabilities, without the SDK.

`ProxyServer` and `AggregateServer` answer the handshake (the relay's `handshake`) and stamp
2026-era results (`server_info_stamp`) from here, as the SDK's lowlevel `Server` does from its
own fields; their SDK `Server` (`sdk_server.SdkServer`, built on first use) copies the same
identity and asks them for the same capabilities. Both are kept in their wire form
(`capabilities_wire`, and `server_info_stamp` built by `implementation_wire`): a `bastion wrap`
answers `initialize` from them without loading the protocol-wide models, which only the SDK's
server and the 2026 era's `server/discover` ask for (`get_capabilities`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bastion.lazy_import import lazy_module

if TYPE_CHECKING:
    import mcp_types as types
else:  # the protocol-wide models: a quarter of a wrap's start, loaded by their first use
    types = lazy_module("mcp_types")


@dataclass(frozen=True, slots=True)
class InitializationOptions:
    """The fields of the SDK's `InitializationOptions` the handshake reads."""

    server_name: str
    server_version: str
    capabilities: dict[str, Any]
    """`ServerCapabilities` as the wire has it (a fresh copy: the caller owns it)."""
    title: str | None = None
    description: str | None = None
    instructions: str | None = None
    website_url: str | None = None
    icons: list[types.Icon] | None = None


class ServedIdentity:
    """A served server's identity fields (those of the SDK's `Server`) and what derives from them."""

    name: str
    version: str
    title: str | None = None
    description: str | None = None
    instructions: str | None = None
    website_url: str | None = None
    icons: list[types.Icon] | None = None

    def capabilities_wire(self, *, protocol_version: str | None = None) -> dict[str, Any]:
        """The capabilities offered an agent of `protocol_version`, as the wire has them (a fresh copy)."""
        raise NotImplementedError

    def get_capabilities(self, *, protocol_version: str | None = None) -> types.ServerCapabilities:
        """The same as the SDK's model (for its server, and the 2026 era's `server/discover`)."""
        return types.ServerCapabilities.model_validate(self.capabilities_wire(protocol_version=protocol_version))

    def create_initialization_options(self) -> InitializationOptions:
        return InitializationOptions(
            server_name=self.name,
            server_version=self.version,
            capabilities=self.capabilities_wire(),
            title=self.title,
            description=self.description,
            instructions=self.instructions,
            website_url=self.website_url,
            icons=self.icons,
        )

    @cached_property
    def _server_info_stamp_source(self) -> dict[str, Any]:
        return implementation_wire(self.name, self.version, self.title, self.description, self.website_url, self.icons)

    @property
    def server_info_stamp(self) -> dict[str, Any]:
        """The server's `Implementation` as the SDK's server stamps results with it (a fresh copy:
        the caller owns it)."""
        return copy.deepcopy(self._server_info_stamp_source)

    def identity_changed(self) -> None:
        """Forget the cached stamp (and tell the SDK server, once built) after the fields changed."""
        self.__dict__.pop("_server_info_stamp_source", None)
        sdk = self.__dict__.get("sdk")
        if sdk is not None:
            sdk.copy_identity()


def implementation_wire(
    name: str,
    version: str,
    title: str | None = None,
    description: str | None = None,
    website_url: str | None = None,
    icons: list[types.Icon] | None = None,
) -> dict[str, Any]:
    """An `Implementation` as the model dumps it (its fields in order, unset ones left out),
    built without it; icons (models, never set by Bastion itself) are dumped by theirs."""
    out: dict[str, Any] = {"name": name}
    if title is not None:
        out["title"] = title
    out["version"] = version
    if description is not None:
        out["description"] = description
    if website_url is not None:
        out["websiteUrl"] = website_url
    if icons is not None:
        out["icons"] = [icon.model_dump(by_alias=True, mode="json", exclude_none=True) for icon in icons]
    return out
