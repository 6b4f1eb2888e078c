"""The two homes of the shared-state stores (tokens, admin tokens, approvals, pins), for tests run on both.

`sqlite`: files in the test's folder. `postgresql`: a schema of its own in the test database
(`BASTION_TEST_POSTGRES`), dropped afterwards; started if down, skipped loudly if it cannot be.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bastion.admin.sqlite_tokens import SqliteAdminTokenStore
from bastion.admin.tokens import AdminTokenStore
from bastion.approvals.sqlite_store import SqliteApprovalStore
from bastion.approvals.store import ApprovalStore
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.auth.tokens import TokenStore
from bastion.guard.pinning.sqlite_store import SqlitePinStore
from bastion.guard.pinning.store import PinStore
from tests.unit.audit.postgres import postgres_schema

BACKENDS = ["sqlite", "postgresql"]
SQLITE_REFRESH = 0.5
"""Longest SQLite refresh interval of the stores here: past it, another connection's change is seen."""


@dataclass
class StateBackend:
    """Opens stores on one backend; every store opened on it shares the same database."""

    name: str
    folder: Path
    clock: Callable[[], float]
    advance: Callable[[float], None]
    url: str | None = None
    _opened: list[Any] = field(default_factory=list)

    def _keep(self, store: Any) -> Any:
        self._opened.append(store)
        return store

    def tokens(self) -> TokenStore:
        if self.url is None:
            return self._keep(SqliteTokenStore(self.folder / "tokens.db", clock=self.clock))  # type: ignore[no-any-return]
        from bastion.auth.postgres_tokens import PostgresTokenStore

        return self._keep(PostgresTokenStore(self.url, clock=self.clock))  # type: ignore[no-any-return]

    def admin_tokens(self) -> AdminTokenStore:
        if self.url is None:
            return self._keep(SqliteAdminTokenStore(self.folder / "admin_tokens.db", clock=self.clock))  # type: ignore[no-any-return]
        from bastion.admin.postgres_tokens import PostgresAdminTokenStore

        return self._keep(PostgresAdminTokenStore(self.url, clock=self.clock))  # type: ignore[no-any-return]

    def approvals(self) -> ApprovalStore:
        if self.url is None:
            store: Any = SqliteApprovalStore(self.folder / "approvals.db", clock=self.clock, poll_interval=0.01)
        else:
            from bastion.approvals.postgres_store import PostgresApprovalStore

            # No polling to speak of: a decision must wake the waiter by notification.
            store = PostgresApprovalStore(self.url, clock=self.clock, fallback_poll=600)
        return self._keep(store)  # type: ignore[no-any-return]

    def pins(self) -> PinStore:
        if self.url is None:
            return self._keep(SqlitePinStore(self.folder / "pins.db", clock=self.clock))  # type: ignore[no-any-return]
        from bastion.guard.pinning.postgres_store import PostgresPinStore

        return self._keep(PostgresPinStore(self.url, clock=self.clock))  # type: ignore[no-any-return]

    @contextmanager
    def propagation(self, kind: str) -> Iterator[None]:
        """Around a change made through another store (the CLI, another replica): on exit, every
        store of this backend sees it. SQLite: the refresh interval passes. PostgreSQL: the
        change's notification has been handled by this process's listener."""
        if self.url is None:
            yield
            self.advance(SQLITE_REFRESH + 0.01)
            return
        from bastion.state.postgres import acquire

        shared = acquire(self.url)
        heard = threading.Event()
        # Subscribed after the stores under test, so their callbacks have run when this one does.
        subscription = shared.database.listener.subscribe(
            shared.database.channel(kind), lambda _: heard.set(), lambda: None
        )
        try:
            yield
            assert heard.wait(10), f"no {kind} notification within 10 s"
        finally:
            shared.database.listener.unsubscribe(subscription)
            shared.release()

    def close(self) -> None:
        for store in reversed(self._opened):
            store.close()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def state_backend(name: str, folder: Path, clock: FakeClock | None = None) -> Iterator[StateBackend]:
    """A `StateBackend` of kind `name`; every store it opened is closed (and a schema dropped) on exit."""
    clock = clock if clock is not None else FakeClock()
    if name == "sqlite":
        backend = StateBackend(name, folder, clock, clock.advance)
        try:
            yield backend
        finally:
            backend.close()
        return
    with postgres_schema() as url:
        backend = StateBackend(name, folder, clock, clock.advance, url)
        try:
            yield backend
        finally:
            backend.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[StateBackend]:
    with state_backend(request.param, tmp_path / "data", clock) as opened:
        yield opened
