"""The SQLite audit log, its WAL and its shared-memory file are readable by their owner only (issue 13, item 4)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.audit import open_audit_store
from bastion.audit.events import CallRequested

pytestmark = pytest.mark.anyio


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_log_and_its_wal_are_private(tmp_path: Path, permissive_umask: None) -> None:
    store = open_audit_store(tmp_path / "data")
    await store.open()
    try:
        await store.record(CallRequested(method="tools/call", tool="t", arguments={"q": 1}))
        files = [tmp_path / "data" / name for name in ("audit.db", "audit.db-wal", "audit.db-shm")]

        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    finally:
        await store.close()


async def test_a_log_left_readable_by_others_is_made_private(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "audit.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    store = open_audit_store(tmp_path, url=f"sqlite://{path}")
    await store.open()
    await store.close()

    assert mode(path) == 0o600
