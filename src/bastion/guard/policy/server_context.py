"""The deployment settings a call is judged against, shared by argument conditions and CEL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerContext:
    """The deployment settings a call is judged against: the server's allowed roots and domains."""

    roots: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
