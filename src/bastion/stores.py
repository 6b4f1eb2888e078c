"""Where a gateway's shared state lives: agent tokens, admin tokens, approvals and tool pins.

Unset `database_url`: SQLite files under `data_dir` (`tokens.db`, `admin_tokens.db`,
`approvals.db`, `pins.db`). Set: the PostgreSQL database it names, shared by every gateway
replica and `bastion` command that uses the same configuration. The gateway and the CLI
open their stores here, so both always agree on where the state is. The plumbing the
implementations share (files, pools, notifications) is `bastion.state`, below them all.
"""

from __future__ import annotations

from bastion.admin.sqlite_tokens import SqliteAdminTokenStore
from bastion.admin.tokens import AdminTokenStore
from bastion.approvals.sqlite_store import SqliteApprovalStore
from bastion.approvals.store import ApprovalStore
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.auth.tokens import TokenStore
from bastion.config import BastionConfig
from bastion.guard.pinning.sqlite_store import SqlitePinStore
from bastion.guard.pinning.store import PinStore
from bastion.state.errors import StateStoreUnavailable

TOKENS_DB = "tokens.db"
ADMIN_TOKENS_DB = "admin_tokens.db"
APPROVALS_DB = "approvals.db"
PINS_DB = "pins.db"


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise StateStoreUnavailable(f"database_url needs psycopg: pip install 'bastion-mcp[postgres]' ({exc})") from exc


def open_token_store(config: BastionConfig) -> TokenStore:
    """The agent-token store (shared with `bastion token`)."""
    if config.database_url is not None:
        _require_psycopg()
        from bastion.auth.postgres_tokens import PostgresTokenStore

        return PostgresTokenStore(config.database_url)
    return SqliteTokenStore(config.data_dir / TOKENS_DB)


def open_admin_token_store(config: BastionConfig) -> AdminTokenStore:
    """Admin credentials, apart from agent tokens (shared with `bastion admin token`)."""
    if config.database_url is not None:
        _require_psycopg()
        from bastion.admin.postgres_tokens import PostgresAdminTokenStore

        return PostgresAdminTokenStore(config.database_url)
    return SqliteAdminTokenStore(config.data_dir / ADMIN_TOKENS_DB)


def open_approval_store(config: BastionConfig) -> ApprovalStore:
    """The approval store (shared with `bastion approvals` and every replica)."""
    if config.database_url is not None:
        _require_psycopg()
        from bastion.approvals.postgres_store import PostgresApprovalStore

        return PostgresApprovalStore(config.database_url)
    return SqliteApprovalStore(config.data_dir / APPROVALS_DB)


def open_pin_store(config: BastionConfig) -> PinStore:
    """The tool-pin store (shared with `bastion tools` and every replica)."""
    if config.database_url is not None:
        _require_psycopg()
        from bastion.guard.pinning.postgres_store import PostgresPinStore

        return PostgresPinStore(config.database_url)
    return SqlitePinStore(config.data_dir / PINS_DB)


def audit_url(config: BastionConfig) -> str | None:
    """Where the audit log is: `audit.url`, else `database_url`, else None (`data_dir/audit.db`)."""
    return config.audit.url if config.audit.url is not None else config.database_url
