"""Approvals in the shared PostgreSQL database (`database_url`), for several gateway replicas.

Every new approval, decision and expiry sends a notification on the store's channel
(`bastion.approvals.<schema>`), with the approval id as payload, in the same transaction.
`wait_for_decision` is woken by it through the process's listener, so a decision made
through any replica's admin API or the CLI releases the call held on another replica at
once. A slow poll (every `fallback_poll` seconds) is only a safety net for a notification
lost while the listener reconnected.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import psycopg

from bastion.approvals.model import AllowRule, Approval, ApprovalError, ApprovalState, canonical_arguments
from bastion.approvals.rows import (
    APPROVAL_COLUMNS,
    ID_ATTEMPTS,
    RULE_COLUMNS,
    approval_of,
    effective,
    rule_of,
)
from bastion.postgres import Subscription, acquire

DEFAULT_FALLBACK_POLL = 2.0
"""Seconds between re-reads of a waited-for approval when no notification came."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            agent TEXT NOT NULL,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments TEXT NOT NULL,
            rule TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            decided_by TEXT,
            decided_at DOUBLE PRECISION,
            decision_reason TEXT,
            always BOOLEAN NOT NULL DEFAULT FALSE,
            consumed_at DOUBLE PRECISION)""",
        "CREATE INDEX approvals_fingerprint ON approvals (fingerprint, state)",
        "CREATE INDEX approvals_state ON approvals (state, expires_at)",
        """CREATE TABLE allow_rules (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            approval_id TEXT NOT NULL,
            revoked_at DOUBLE PRECISION)""",
        "CREATE INDEX allow_rules_match ON allow_rules (agent, server, tool)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

Waker = Callable[[], None]


class PostgresApprovalStore:
    """`ApprovalStore` on PostgreSQL. `clock` returns Unix time (tests move it)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        fallback_poll: float = DEFAULT_FALLBACK_POLL,
    ) -> None:
        self._shared = acquire(url)
        self._db = self._shared.database
        self._clock = clock
        self._fallback_poll = fallback_poll
        self._channel = self._db.channel("approvals")
        self._waiters: dict[str, set[Waker]] = {}
        self._waiters_lock = threading.Lock()
        self._subscription: Subscription | None = None
        try:
            self._db.migrate("approvals", MIGRATIONS)
        except BaseException:
            self._shared.release()
            raise

    # --- reads -------------------------------------------------------------------

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._db.pool.connection() as conn:
            return conn.execute(query.encode(), params).fetchall()

    def get(self, approval_id: str) -> Approval | None:
        rows = self._rows(f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = %s", (approval_id,))
        return effective(approval_of(rows[0]), self._clock()) if rows else None

    def list(self, state: ApprovalState | None = None) -> builtins.list[Approval]:
        now = self._clock()
        rows = self._rows(f"SELECT {APPROVAL_COLUMNS} FROM approvals ORDER BY created_at, id")
        approvals = [effective(approval_of(row), now) for row in rows]
        return [a for a in approvals if state is None or a.state is state]

    def pending_for(self, fingerprint: str) -> Approval | None:
        rows = self._rows(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE fingerprint = %s AND state = %s AND expires_at > %s "
            "ORDER BY created_at LIMIT 1",
            (fingerprint, ApprovalState.PENDING.value, self._clock()),
        )
        return approval_of(rows[0]) if rows else None

    def matching_rule(self, agent: str, server: str, tool: str, arguments: Mapping[str, Any]) -> AllowRule | None:
        rows = self._rows(
            f"SELECT {RULE_COLUMNS} FROM allow_rules WHERE agent = %s AND server = %s AND tool = %s "
            "AND arguments = %s AND revoked_at IS NULL ORDER BY created_at LIMIT 1",
            (agent, server, tool, canonical_arguments(arguments)),
        )
        return rule_of(rows[0]) if rows else None

    def rules(self) -> builtins.list[AllowRule]:
        rows = self._rows(f"SELECT {RULE_COLUMNS} FROM allow_rules WHERE revoked_at IS NULL ORDER BY created_at, id")
        return [rule_of(row) for row in rows]

    # --- writes ------------------------------------------------------------------

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
                with self._db.pool.connection() as conn, conn.transaction():
                    conn.execute(
                        "INSERT INTO approvals (id, fingerprint, agent, server, tool, arguments, rule, reason, "
                        "created_at, expires_at, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                    conn.execute("SELECT pg_notify(%s, %s)", (self._channel, approval.id))
            except psycopg.errors.UniqueViolation:
                if attempt == ID_ATTEMPTS - 1:
                    raise
                continue
            return approval
        raise AssertionError("unreachable")

    def decide(
        self, approval_id: str, *, approve: bool, decided_by: str, reason: str = "", always: bool = False
    ) -> Approval:
        if not decided_by:
            raise ValueError("a decision must name who decided")
        if always and not approve:
            raise ApprovalError("`always` applies to approvals only")
        now = self._clock()
        state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
        with self._db.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = %s FOR UPDATE".encode(), (approval_id,)
            ).fetchone()
            if row is None:
                raise ApprovalError(f"no approval with id {approval_id!r}")
            current = effective(approval_of(row), now)
            if current.state is not ApprovalState.PENDING:
                raise ApprovalError(f"approval {approval_id} is already {current.state.value}")
            conn.execute(
                "UPDATE approvals SET state = %s, decided_by = %s, decided_at = %s, decision_reason = %s, "
                "always = %s WHERE id = %s",
                (state.value, decided_by, now, reason, always, approval_id),
            )
            if always:
                conn.execute(
                    f"INSERT INTO allow_rules ({RULE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)".encode(),
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
            conn.execute("SELECT pg_notify(%s, %s)", (self._channel, approval_id))
        decided = self.get(approval_id)
        assert decided is not None
        return decided

    def consume(self, approval_id: str) -> bool:
        with self._db.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE approvals SET consumed_at = %s WHERE id = %s AND state = %s AND consumed_at IS NULL",
                (self._clock(), approval_id, ApprovalState.APPROVED.value),
            )
        return cursor.rowcount > 0

    def consume_approved(self, fingerprint: str, retry_window: float) -> Approval | None:
        now = self._clock()
        # SKIP LOCKED: two replicas retrying the same call at once each take a different approval, or none.
        rows = self._rows(
            "UPDATE approvals SET consumed_at = %s WHERE id = ("
            "SELECT id FROM approvals WHERE fingerprint = %s AND state = %s AND consumed_at IS NULL "
            "AND decided_at > %s ORDER BY decided_at LIMIT 1 FOR UPDATE SKIP LOCKED) AND consumed_at IS NULL "
            f"RETURNING {APPROVAL_COLUMNS}",
            (now, fingerprint, ApprovalState.APPROVED.value, now - retry_window),
        )
        return approval_of(rows[0]) if rows else None

    def revoke_rule(self, rule_id: str) -> bool:
        with self._db.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE allow_rules SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (self._clock(), rule_id)
            )
        return cursor.rowcount > 0

    def expire_due(self) -> builtins.list[Approval]:
        with self._db.pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                f"UPDATE approvals SET state = %s WHERE state = %s AND expires_at <= %s "
                f"RETURNING {APPROVAL_COLUMNS}".encode(),
                (ApprovalState.EXPIRED.value, ApprovalState.PENDING.value, self._clock()),
            ).fetchall()
            for row in rows:
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, row[0]))
        return [approval_of(row) for row in rows]

    # --- waiting -----------------------------------------------------------------

    async def wait_for_decision(self, approval_id: str, within: float) -> Approval:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:  # on the listener thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(woken.set)

        if self._subscription is None:
            await anyio.to_thread.run_sync(self._subscribe)
        self._add_waiter(approval_id, wake)
        try:
            with anyio.move_on_after(within):
                # Registered before this read, so a decision committed after it wakes us.
                approval = await anyio.to_thread.run_sync(self._get_fresh, approval_id)
                while approval.state is ApprovalState.PENDING:
                    until_expiry = approval.expires_at - self._clock()
                    with anyio.move_on_after(max(0.0, min(self._fallback_poll, until_expiry))):
                        await woken.wait()
                    woken.clear()
                    approval = await anyio.to_thread.run_sync(self._get_fresh, approval_id)
                return approval
        finally:
            self._remove_waiter(approval_id, wake)
        return self._get_fresh(approval_id)

    def _subscribe(self) -> None:
        with self._waiters_lock:
            if self._subscription is not None:
                return
        subscription = self._db.listener.subscribe(self._channel, self._notified, self._wake_all)
        with self._waiters_lock:
            if self._subscription is None:
                self._subscription = subscription
                return
        self._db.listener.unsubscribe(subscription)  # another waiter subscribed meanwhile

    def _add_waiter(self, approval_id: str, wake: Waker) -> None:
        with self._waiters_lock:
            self._waiters.setdefault(approval_id, set()).add(wake)

    def _remove_waiter(self, approval_id: str, wake: Waker) -> None:
        with self._waiters_lock:
            waiting = self._waiters.get(approval_id)
            if waiting is not None:
                waiting.discard(wake)
                if not waiting:
                    del self._waiters[approval_id]

    def _notified(self, approval_id: str) -> None:
        with self._waiters_lock:
            wakers = list(self._waiters.get(approval_id, ()))
        for wake in wakers:
            wake()

    def _wake_all(self) -> None:
        with self._waiters_lock:
            wakers = [wake for waiting in self._waiters.values() for wake in waiting]
        for wake in wakers:
            wake()

    def _get_fresh(self, approval_id: str) -> Approval:
        approval = self.get(approval_id)
        if approval is None:
            raise ApprovalError(f"no approval with id {approval_id!r}")
        return approval

    def close(self) -> None:
        if self._subscription is not None:
            self._db.listener.unsubscribe(self._subscription)
        self._shared.release()
