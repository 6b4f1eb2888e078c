"""The agent token store, on SQLite and on PostgreSQL (`backend`), and what only the SQLite file has."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path

import pytest

from bastion.auth.sqlite_tokens import SCHEMA_VERSION, SqliteTokenStore
from bastion.auth.tokens import TokenStore
from bastion.model import Principal
from tests.unit.state_backends import StateBackend


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tokens.db"


@pytest.fixture
def store(backend: StateBackend) -> TokenStore:
    return backend.tokens()


def test_create_then_verify(store: TokenStore):
    info, token = store.create("claude")
    assert re.fullmatch(r"bst_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)
    assert token.startswith(f"bst_{info.id}_")
    assert store.verify(token) == Principal(agent="claude", servers=None, via="token", credential_id=info.id)
    assert info.state == "active"


def test_tokens_are_unique(store: TokenStore):
    tokens = {store.create("claude")[1] for _ in range(20)}
    assert len(tokens) == 20


def test_only_the_hash_is_stored(db_path: Path):
    store = SqliteTokenStore(db_path)
    _, token = store.create("claude", servers=["db"])
    store.close()
    secret = token[len("bst_xxxxxxxx_") :]
    files = [p for p in db_path.parent.iterdir() if p.name.startswith("tokens.db")]
    content = b"".join(p.read_bytes() for p in files)
    assert token.encode() not in content
    assert secret.encode() not in content
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT * FROM tokens").fetchall()
    assert len(rows) == 1
    assert not any(isinstance(v, str) and (token in v or secret in v) for v in rows[0])


def test_db_file_is_private_and_versioned(db_path: Path):
    SqliteTokenStore(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(db_path: Path):
    SqliteTokenStore(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        SqliteTokenStore(db_path)


def test_tokens_survive_reopen(backend: StateBackend):
    first = backend.tokens()
    info, token = first.create("claude")
    first.close()
    second = backend.tokens()
    assert second.verify(token) == Principal("claude", None, "token", info.id)


def test_revoke_in_same_instance_is_immediate(store: TokenStore):
    info, token = store.create("claude")
    assert store.verify(token) is not None
    assert store.revoke(info.id) is True
    assert store.verify(token) is None
    assert store.revoke(info.id) is True  # idempotent
    assert store.revoke("deadbeef") is False


def test_revoke_from_another_process_takes_effect(store: TokenStore, backend: StateBackend):
    info, token = store.create("claude")
    assert store.verify(token) is not None  # now cached
    cli = backend.tokens()  # what `bastion token revoke` opens
    with backend.propagation("tokens"):
        assert cli.revoke(info.id) is True
    assert store.verify(token) is None


def test_revoke_agent_from_another_process(store: TokenStore, backend: StateBackend):
    _, first = store.create("claude")
    _, second = store.create("claude", servers=["db"])
    _, other = store.create("cursor")
    assert all(store.verify(t) for t in (first, second, other))
    cli = backend.tokens()
    with backend.propagation("tokens"):
        assert cli.revoke_agent("claude") == 2
    assert cli.revoke_agent("claude") == 0
    assert cli.revoke_agent("nobody") == 0
    assert store.verify(first) is None
    assert store.verify(second) is None
    assert store.verify(other) is not None


def test_token_created_by_another_process_is_accepted(store: TokenStore, backend: StateBackend):
    assert store.verify("bst_00000000_" + "A" * 43) is None  # cache loaded
    cli = backend.tokens()
    with backend.propagation("tokens"):
        info, token = cli.create("claude")
    assert store.verify(token) == Principal("claude", None, "token", info.id)


def test_sqlite_token_created_by_another_process_works_at_once(db_path: Path, clock) -> None:
    """`bastion token create` then a request at once: the gateway's copy, checked a moment ago,
    must not refuse the new token for the rest of its refresh interval (seen on a fast host)."""
    gateway = SqliteTokenStore(db_path, clock=clock)
    cli = SqliteTokenStore(db_path, clock=clock)
    try:
        _, known = gateway.create("claude")
        assert gateway.verify(known) is not None  # the copy is checked now; the clock stands still
        info, token = cli.create("cursor")
        assert gateway.verify(token) == Principal("cursor", None, "token", info.id)
        assert gateway.verify("bst_00000000_" + "A" * 43) is None  # still refused: not a token anywhere
        assert cli.revoke(info.id) is True
        clock.advance(0.6)  # past the refresh interval: the revocation is seen
        assert gateway.verify(token) is None
    finally:
        cli.close()
        gateway.close()


def test_expired_token_is_rejected(store: TokenStore, clock):
    info, token = store.create("claude", expires_in=60)
    assert info.expires_at == clock.now + 60
    clock.advance(59)
    assert store.verify(token) is not None
    clock.advance(1)
    assert store.verify(token) is None


def test_list_reports_state(store: TokenStore, clock):
    active, _ = store.create("a")
    revoked, _ = store.create("b", servers=["db", "web"])
    expired, _ = store.create("c", expires_in=10)
    store.revoke(revoked.id)
    clock.advance(10)
    listed = {i.id: i for i in store.list()}
    assert set(listed) == {active.id, revoked.id, expired.id}
    assert listed[revoked.id].servers == frozenset({"db", "web"})
    assert {i: listed[i].state_at(clock.now) for i in listed} == {
        active.id: "active",
        revoked.id: "revoked",
        expired.id: "expired",
    }


@pytest.mark.parametrize(
    "token",
    [
        "",
        "bst_",
        "bst__",
        "bst_0123abcd_",
        "bst_0123abcd_short",
        "bst_0123ABCD_" + "A" * 43,
        "bst_0123abc_" + "A" * 43,
        "bst_0123abcd_" + "A" * 44,
        "bst_0123abcd_" + "A" * 42 + "=",
        " bst_0123abcd_" + "A" * 43,
        "BST_0123abcd_" + "A" * 43,
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "bst_0123abcd_" + "A" * 42 + "\n",
    ],
)
def test_malformed_tokens_are_rejected(store: TokenStore, token: str):
    store.create("claude")
    assert store.verify(token) is None


def test_non_string_is_rejected(store: TokenStore):
    assert store.verify(None) is None  # type: ignore[arg-type]


def test_tampered_secret_is_rejected(store: TokenStore):
    info, token = store.create("claude")
    last = token[-1]
    tampered = token[:-1] + ("B" if last != "B" else "C")
    assert store.verify(tampered) is None
    other, _ = store.create("cursor")
    swapped_id = token.replace(info.id, other.id, 1)
    assert store.verify(swapped_id) is None


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        (None, None),
        (["db"], frozenset({"db"})),
        (("db", "web", "db"), frozenset({"db", "web"})),
        ([], frozenset()),
    ],
)
def test_servers_restriction(store: TokenStore, servers, expected):
    _, token = store.create("claude", servers=servers)
    principal = store.verify(token)
    assert principal is not None
    assert principal.servers == expected
    assert principal.may_reach("db") == (expected is None or "db" in expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agent": ""}, "agent"),
        ({"agent": "  "}, "agent"),
        ({"agent": "a", "expires_in": 0}, "expires_in"),
        ({"agent": "a", "expires_in": -5}, "expires_in"),
        ({"agent": "a", "servers": [""]}, "server"),
    ],
)
def test_create_validates(store: TokenStore, kwargs, message):
    with pytest.raises(ValueError, match=message):
        store.create(**kwargs)


def test_id_collision_is_retried(store: TokenStore, monkeypatch: pytest.MonkeyPatch):
    first, _ = store.create("claude")
    ids = iter([first.id, first.id, "0badc0de"])
    monkeypatch.setattr("bastion.auth.tokens.secrets.token_hex", lambda n: next(ids))
    info, token = store.create("cursor")
    assert info.id == "0badc0de"
    assert store.verify(token) is not None
