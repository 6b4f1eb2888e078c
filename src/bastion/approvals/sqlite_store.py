"""Approvals in a SQLite file (WAL), shared safely by the gateway and the `bastion` CLI.

A waiting call learns of a decision made by another process by watching the file's
`PRAGMA data_version`, which changes whenever another connection commits: a cheap check
made every `poll_interval` seconds, so the wait ends promptly without reading rows.
"""

from __future__ import annotations

import builtins
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from bastion import sqlite_schema
from bastion.approvals.model import AllowRule, Approval, ApprovalError, ApprovalState, canonical_arguments
from bastion.approvals.rows import APPROVAL_COLUMNS, ID_ATTEMPTS, RULE_COLUMNS, approval_of, effective, rule_of

DEFAULT_POLL_INTERVAL = 0.05
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        agent TEXT NOT NULL,
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        rule TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        state TEXT NOT NULL,
        decided_by TEXT,
        decided_at REAL,
        decision_reason TEXT,
        always INTEGER NOT NULL DEFAULT 0,
        consumed_at REAL
    );
    CREATE INDEX approvals_fingerprint ON approvals (fingerprint, state);
    CREATE INDEX approvals_state ON approvals (state, expires_at);
    CREATE TABLE allow_rules (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        reason TEXT NOT NULL,
        approval_id TEXT NOT NULL,
        revoked_at REAL
    );
    CREATE INDEX allow_rules_match ON allow_rules (agent, server, tool);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


class SqliteApprovalStore:
    """`ApprovalStore` on one SQLite file. `clock` returns Unix time (tests move it)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._db = sqlite_schema.open_private(self._path)
        with self._lock:
            sqlite_schema.migrate(self._db, _MIGRATIONS, what="approval", path=self._path)
        self._watch = sqlite_schema.connect(self._path)

    def create(
        self,
        *,
        agent: str,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        rule: str,
        reason: str,
        expire_after: float,
    ) -> Approval:
        now = self._clock()
        for attempt in range(ID_ATTEMPTS):
            approval = Approval(
                id=secrets.token_hex(4),
                agent=agent,
                server=server,
                tool=tool,
                arguments=dict(arguments),
                rule=rule,
                reason=reason,
                created_at=now,
                expires_at=now + expire_after,
            )
            try:
                with self._lock:
                    self._db.execute(
                        "INSERT INTO approvals (id, fingerprint, agent, server, tool, arguments, rule, reason, "
                        "created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            approval.id,
                            approval.fingerprint,
                            agent,
                            server,
                            tool,
                            canonical_arguments(arguments),
                            rule,
                            reason,
                            now,
                            approval.expires_at,
                            ApprovalState.PENDING.value,
                        ),
                    )
            except sqlite3.IntegrityError:
                if attempt == ID_ATTEMPTS - 1:
                    raise
                continue
            return approval
        raise AssertionError("unreachable")

    def get(self, approval_id: str) -> Approval | None:
        with self._lock:
            row = self._db.execute(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return None if row is None else self._effective(approval_of(row))

    def list(self, state: ApprovalState | None = None) -> builtins.list[Approval]:
        with self._lock:
            rows = self._db.execute(f"SELECT {APPROVAL_COLUMNS} FROM approvals ORDER BY created_at, id").fetchall()
        approvals = [self._effective(approval_of(row)) for row in rows]
        return [a for a in approvals if state is None or a.state is state]

    def _effective(self, approval: Approval) -> Approval:
        return effective(approval, self._clock())

    def pending_for(self, fingerprint: str) -> Approval | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE fingerprint = ? AND state = ? AND expires_at > ? "
                "ORDER BY created_at LIMIT 1",
                (fingerprint, ApprovalState.PENDING.value, self._clock()),
            ).fetchone()
        return None if row is None else approval_of(row)

    def decide(
        self, approval_id: str, *, approve: bool, decided_by: str, reason: str = "", always: bool = False
    ) -> Approval:
        if not decided_by:
            raise ValueError("a decision must name who decided")
        if always and not approve:
            raise ApprovalError("`always` applies to approvals only")
        now = self._clock()
        state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
                ).fetchone()
                if row is None:
                    raise ApprovalError(f"no approval with id {approval_id!r}")
                current = self._effective(approval_of(row))
                if current.state is not ApprovalState.PENDING:
                    raise ApprovalError(f"approval {approval_id} is already {current.state.value}")
                self._db.execute(
                    "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, decision_reason = ?, always = ? "
                    "WHERE id = ?",
                    (state.value, decided_by, now, reason, int(always), approval_id),
                )
                if always:
                    self._db.execute(
                        f"INSERT INTO allow_rules ({RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            secrets.token_hex(4),
                            current.agent,
                            current.server,
                            current.tool,
                            canonical_arguments(current.arguments),
                            decided_by,
                            now,
                            reason,
                            approval_id,
                        ),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        decided = self.get(approval_id)
        assert decided is not None
        return decided

    def consume(self, approval_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE approvals SET consumed_at = ? WHERE id = ? AND state = ? AND consumed_at IS NULL",
                (self._clock(), approval_id, ApprovalState.APPROVED.value),
            )
        return cursor.rowcount > 0

    def consume_approved(self, fingerprint: str, retry_window: float) -> Approval | None:
        now = self._clock()
        with self._lock:
            row = self._db.execute(
                "UPDATE approvals SET consumed_at = ? WHERE id = ("
                "SELECT id FROM approvals WHERE fingerprint = ? AND state = ? AND consumed_at IS NULL "
                "AND decided_at > ? ORDER BY decided_at LIMIT 1) AND consumed_at IS NULL "
                f"RETURNING {APPROVAL_COLUMNS}",
                (now, fingerprint, ApprovalState.APPROVED.value, now - retry_window),
            ).fetchone()
        return None if row is None else approval_of(row)

    def matching_rule(self, agent: str, server: str, tool: str, arguments: Mapping[str, Any]) -> AllowRule | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {RULE_COLUMNS} FROM allow_rules WHERE agent = ? AND server = ? AND tool = ? "
                "AND arguments = ? AND revoked_at IS NULL ORDER BY created_at LIMIT 1",
                (agent, server, tool, canonical_arguments(arguments)),
            ).fetchone()
        return None if row is None else rule_of(row)

    def rules(self) -> builtins.list[AllowRule]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {RULE_COLUMNS} FROM allow_rules WHERE revoked_at IS NULL ORDER BY created_at, id"
            ).fetchall()
        return [rule_of(row) for row in rows]

    def revoke_rule(self, rule_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE allow_rules SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (self._clock(), rule_id)
            )
        return cursor.rowcount > 0

    def expire_due(self) -> builtins.list[Approval]:
        with self._lock:
            rows = self._db.execute(
                f"UPDATE approvals SET state = ? WHERE state = ? AND expires_at <= ? RETURNING {APPROVAL_COLUMNS}",
                (ApprovalState.EXPIRED.value, ApprovalState.PENDING.value, self._clock()),
            ).fetchall()
        return [approval_of(row) for row in rows]

    async def wait_for_decision(self, approval_id: str, within: float) -> Approval:
        with anyio.move_on_after(within):
            while True:
                version = self._data_version()
                approval = self._get_fresh(approval_id)
                if approval.state is not ApprovalState.PENDING:
                    return approval
                # Reading the version before the row means a commit in between is not missed.
                while self._data_version() == version:
                    await anyio.sleep(self._poll_interval)
                    if self._clock() >= approval.expires_at:
                        break
        return self._get_fresh(approval_id)

    def _get_fresh(self, approval_id: str) -> Approval:
        approval = self.get(approval_id)
        if approval is None:
            raise ApprovalError(f"no approval with id {approval_id!r}")
        return approval

    def _data_version(self) -> int:
        with self._lock:
            return sqlite_schema.data_version(self._watch)

    def close(self) -> None:
        with self._lock:
            self._watch.close()
            self._db.close()
