"""The shared PostgreSQL database (`database_url`) that several gateway replicas keep their state in.

`PostgresDatabase` is one process's handle on it: a connection pool, the schema version of
each store, and one `NotificationListener` that wakes waiters and invalidates caches when
another process changes something (LISTEN/NOTIFY).
"""

from __future__ import annotations

from bastion.state.errors import StateStoreUnavailable as DatabaseUnavailable
from bastion.state.postgres.database import PostgresDatabase, SharedDatabase, acquire
from bastion.state.postgres.listener import NotificationListener, Subscription

__all__ = [
    "DatabaseUnavailable",
    "NotificationListener",
    "PostgresDatabase",
    "SharedDatabase",
    "Subscription",
    "acquire",
]
