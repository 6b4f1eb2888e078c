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
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import psycopg

from bastion.approvals import rows
from bastion.approvals.model import AllowRule, Approval, ApprovalError, ApprovalState, canonical_arguments
from bastion.state.fresh_ids import insert_with_fresh_id
from bastion.state.postgres import Subscription, acquire
from bastion.state.postgres.placeholders import postgres

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

    def _rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._db.pool.connection() as conn:
            return conn.execute(postgres(statement), params).fetchall()

    def get(self, approval_id: str) -> Approval | None:
        found = self._rows(rows.SELECT_BY_ID, (approval_id,))
        return rows.effective(rows.approval_of(found[0]), self._clock()) if found else None

    def list(self, state: ApprovalState | None = None) -> builtins.list[Approval]:
        now = self._clock()
        approvals = [rows.effective(rows.approval_of(row), now) for row in self._rows(rows.SELECT_ALL)]
        return [a for a in approvals if state is None or a.state is state]

    def pending_for(self, fingerprint: str) -> Approval | None:
        found = self._rows(rows.SELECT_PENDING, (fingerprint, ApprovalState.PENDING.value, self._clock()))
        return rows.approval_of(found[0]) if found else None

    def matching_rule(self, agent: str, server: str, tool: str, arguments: Mapping[str, Any]) -> AllowRule | None:
        found = self._rows(rows.SELECT_MATCHING_RULE, (agent, server, tool, canonical_arguments(arguments)))
        return rows.rule_of(found[0]) if found else None

    def rules(self) -> builtins.list[AllowRule]:
        return [rows.rule_of(row) for row in self._rows(rows.SELECT_RULES)]

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
        def insert(approval: Approval) -> None:
            with self._db.pool.connection() as conn, conn.transaction():
                conn.execute(postgres(rows.INSERT_APPROVAL), rows.insert_parameters(approval))
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, approval.id))

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
        return insert_with_fresh_id(make, insert, psycopg.errors.UniqueViolation)

    def decide(
        self, approval_id: str, *, approve: bool, decided_by: str, reason: str = "", always: bool = False
    ) -> Approval:
        state = rows.decision_state(approve=approve, decided_by=decided_by, always=always)
        now = self._clock()
        with self._db.pool.connection() as conn, conn.transaction():
            row = conn.execute(postgres(rows.SELECT_BY_ID + " FOR UPDATE"), (approval_id,)).fetchone()
            current = rows.pending(row, approval_id, now)
            conn.execute(postgres(rows.UPDATE_DECISION), (state.value, decided_by, now, reason, always, approval_id))
            if always:
                conn.execute(
                    postgres(rows.INSERT_RULE),
                    rows.rule_parameters(current, decided_by=decided_by, now=now, reason=reason),
                )
            conn.execute("SELECT pg_notify(%s, %s)", (self._channel, approval_id))
        decided = self.get(approval_id)
        assert decided is not None
        return decided

    def consume(self, approval_id: str) -> bool:
        with self._db.pool.connection() as conn:
            cursor = conn.execute(postgres(rows.CONSUME), (self._clock(), approval_id, ApprovalState.APPROVED.value))
        return cursor.rowcount > 0

    def consume_approved(self, fingerprint: str, retry_window: float) -> Approval | None:
        now = self._clock()
        # SKIP LOCKED: two replicas retrying the same call at once each take a different approval, or none.
        found = self._rows(
            rows.consume_approved_statement(" FOR UPDATE SKIP LOCKED"),
            (now, fingerprint, ApprovalState.APPROVED.value, now - retry_window),
        )
        return rows.approval_of(found[0]) if found else None

    def revoke_rule(self, rule_id: str) -> bool:
        with self._db.pool.connection() as conn:
            cursor = conn.execute(postgres(rows.REVOKE_RULE), (self._clock(), rule_id))
        return cursor.rowcount > 0

    def expire_due(self) -> builtins.list[Approval]:
        with self._db.pool.connection() as conn, conn.transaction():
            found = conn.execute(
                postgres(rows.EXPIRE_DUE),
                (ApprovalState.EXPIRED.value, ApprovalState.PENDING.value, self._clock()),
            ).fetchall()
            for row in found:
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, row[0]))
        return [rows.approval_of(row) for row in found]

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
