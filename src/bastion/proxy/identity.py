"""What an agent is told a served MCP server is: its name, version and capabilities, without the SDK.

`ProxyServer` and `AggregateServer` answer the handshake (the relay's `handshake`) and stamp
2026-era results (`server_info_stamp`) from here, as the SDK's lowlevel `Server` does from its
own fields; their SDK `Server` (`sdk_server.SdkServer`, built on first use) copies the same
identity and asks them for the same capabilities.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import mcp_types as types


@dataclass(frozen=True, slots=True)
class InitializationOptions:
    """The fields of the SDK's `InitializationOptions` the handshake reads."""

    server_name: str
    server_version: str
    capabilities: types.ServerCapabilities
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

    def get_capabilities(self, *, protocol_version: str | None = None) -> types.ServerCapabilities:
        raise NotImplementedError

    def create_initialization_options(self) -> InitializationOptions:
        return InitializationOptions(
            server_name=self.name,
            server_version=self.version,
            capabilities=self.get_capabilities(),
            title=self.title,
            description=self.description,
            instructions=self.instructions,
            website_url=self.website_url,
            icons=self.icons,
        )

    @property
    def server_info(self) -> types.Implementation:
        return types.Implementation(
            name=self.name,
            version=self.version,
            title=self.title,
            description=self.description,
            website_url=self.website_url,
            icons=self.icons,
        )

    @cached_property
    def _server_info_stamp_source(self) -> dict[str, Any]:
        return self.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)

    @property
    def server_info_stamp(self) -> dict[str, Any]:
        """A fresh wire dump of `server_info` (the caller owns it), as the SDK's server stamps results."""
        return copy.deepcopy(self._server_info_stamp_source)

    def identity_changed(self) -> None:
        """Forget the cached stamp (and tell the SDK server, once built) after the fields changed."""
        self.__dict__.pop("_server_info_stamp_source", None)
        sdk = self.__dict__.get("sdk")
        if sdk is not None:
            sdk.copy_identity()
