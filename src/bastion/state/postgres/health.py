"""How the shared PostgreSQL database is doing, as `/readyz` reports it."""

from __future__ import annotations

from bastion.state.errors import StateStoreUnavailable
from bastion.state.postgres.database import acquire


def shared_state_health(url: str) -> str:
    """What `/readyz` says of the shared database: `connected` (a query round-trips and change
    notifications are heard), `reconnecting` (queries work; notifications do not yet, so
    copies are re-read on every check), or `unreachable`."""
    try:
        shared = acquire(url)
    except StateStoreUnavailable:
        return "unreachable"
    try:
        with shared.database.pool.connection(timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception:
        return "unreachable"
    else:
        return "connected" if shared.database.hearing_changes else "reconnecting"
    finally:
        shared.release()
