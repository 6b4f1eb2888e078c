"""What the shared-state plumbing raises and how it names a database in messages."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class StateStoreUnavailable(RuntimeError):
    """The shared database (`database_url`) cannot be reached, or holds a schema this Bastion cannot use."""


def redacted_url(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
