"""Approvals in a SQLite file (WAL), shared safely by the gateway and the `bastion` CLI.

A waiting call learns of a decision made by another process by watching the file's
`PRAGMA data_version`, which changes whenever another connection commits: a cheap check
made every `poll_interval` seconds, so the wait ends promptly without reading rows.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from bastion.approvals import rows
from bastion.approvals.model import AllowRule, Approval, ApprovalError, ApprovalState, canonical_arguments
from bastion.state import sqlite_schema
from bastion.state.fresh_ids import insert_with_fresh_id

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
        def insert(approval: Approval) -> None:
            with self._lock:
                self._db.execute(rows.INSERT_APPROVAL, rows.insert_parameters(approval))

        def make() -> Approval:
            return rows.new_approval(
                agent=agent,
                server=server,
                tool=tool,
                arguments=arguments,
                rule=rule,
                reason=reason,
                now=now,
                expire_after=expire_after,
            )

        now = self._clock()
        return insert_with_fresh_id(make, insert, sqlite3.IntegrityError)

    def get(self, approval_id: str) -> Approval | None:
        with self._lock:
            row = self._db.execute(rows.SELECT_BY_ID, (approval_id,)).fetchone()
        return None if row is None else rows.effective(rows.approval_of(row), self._clock())

    def list(self, state: ApprovalState | None = None) -> builtins.list[Approval]:
        with self._lock:
            found = self._db.execute(rows.SELECT_ALL).fetchall()
        now = self._clock()
        approvals = [rows.effective(rows.approval_of(row), now) for row in found]
        return [a for a in approvals if state is None or a.state is state]

    def pending_for(self, fingerprint: str) -> Approval | None:
        with self._lock:
            row = self._db.execute(
                rows.SELECT_PENDING, (fingerprint, ApprovalState.PENDING.value, self._clock())
            ).fetchone()
        return None if row is None else rows.approval_of(row)

    def decide(
        self, approval_id: str, *, approve: bool, decided_by: str, reason: str = "", always: bool = False
    ) -> Approval:
        state = rows.decision_state(approve=approve, decided_by=decided_by, always=always)
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(rows.SELECT_BY_ID, (approval_id,)).fetchone()
                current = rows.pending(row, approval_id, now)
                self._db.execute(rows.UPDATE_DECISION, (state.value, decided_by, now, reason, int(always), approval_id))
                if always:
                    self._db.execute(
                        rows.INSERT_RULE, rows.rule_parameters(current, decided_by=decided_by, now=now, reason=reason)
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
            cursor = self._db.execute(rows.CONSUME, (self._clock(), approval_id, ApprovalState.APPROVED.value))
        return cursor.rowcount > 0

    def consume_approved(self, fingerprint: str, retry_window: float) -> Approval | None:
        now = self._clock()
        with self._lock:
            row = self._db.execute(
                rows.consume_approved_statement(),
                (now, fingerprint, ApprovalState.APPROVED.value, now - retry_window),
            ).fetchone()
        return None if row is None else rows.approval_of(row)

    def matching_rule(self, agent: str, server: str, tool: str, arguments: Mapping[str, Any]) -> AllowRule | None:
        with self._lock:
            row = self._db.execute(
                rows.SELECT_MATCHING_RULE, (agent, server, tool, canonical_arguments(arguments))
            ).fetchone()
        return None if row is None else rows.rule_of(row)

    def rules(self) -> builtins.list[AllowRule]:
        with self._lock:
            found = self._db.execute(rows.SELECT_RULES).fetchall()
        return [rows.rule_of(row) for row in found]

    def revoke_rule(self, rule_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(rows.REVOKE_RULE, (self._clock(), rule_id))
        return cursor.rowcount > 0

    def expire_due(self) -> builtins.list[Approval]:
        with self._lock:
            found = self._db.execute(
                rows.EXPIRE_DUE, (ApprovalState.EXPIRED.value, ApprovalState.PENDING.value, self._clock())
            ).fetchall()
        return [rows.approval_of(row) for row in found]

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
