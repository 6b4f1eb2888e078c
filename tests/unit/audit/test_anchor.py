"""The audit anchor's key and head file (`audit/anchor.py`)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bastion.audit.anchor import KEY_ENV, AuditAnchor, KeySource, anchor_at
from bastion.audit.head import SignedHead
from bastion.audit.store import AuditStoreError


def test_the_key_is_made_private_once_and_reused(tmp_path: Path) -> None:
    keys = KeySource(tmp_path / "audit.key")

    first = keys.load(create=True).sign(1, "a" * 64)
    again = KeySource(tmp_path / "audit.key").load(create=False).sign(1, "a" * 64)

    assert first == again
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no audit key"),
        ("readable", "readable by others"),
        ("short", "shorter than 32"),
    ],
)
def test_a_key_that_cannot_be_trusted_is_refused(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "audit.key"
    if setup != "missing":
        path.write_text("k" * (8 if setup == "short" else 64))
        path.chmod(0o644 if setup == "readable" else 0o600)

    with pytest.raises(AuditStoreError, match=message):
        KeySource(path).load(create=False)


def test_the_environment_key_wins_and_must_be_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "e" * 40)
    anchor = anchor_at(tmp_path)
    signed = anchor.sign(3, "b" * 64)

    assert anchor.key().signs(signed)
    assert not (tmp_path / "audit.key").exists()
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(AuditStoreError, match=KEY_ENV):
        anchor_at(tmp_path).key()


def test_signatures_are_bound_to_the_key_and_the_head(tmp_path: Path) -> None:
    one, other = anchor_at(tmp_path / "one"), anchor_at(tmp_path / "other")
    signed = one.sign(7, "c" * 64)

    assert one.key().signs(signed)
    assert not other.key(create=True).signs(signed)
    assert not one.key().signs(signed._replace(seq=6))
    assert not one.key().signs(signed._replace(hash="d" * 64))
    assert not one.key().signs(signed._replace(mac=""))


def test_a_head_prints_and_parses_back() -> None:
    head = SignedHead(42, "e" * 64, "f" * 64)

    assert SignedHead.parse(head.token()) == head
    assert SignedHead.parse(f"42:{'e' * 64}") == SignedHead(42, "e" * 64)


def test_the_head_file_is_private_and_never_goes_back(tmp_path: Path) -> None:
    anchor = AuditAnchor(KeySource(tmp_path / "audit.key"), tmp_path / "audit.head")
    anchor.committed(anchor.sign(5, "a" * 64))
    anchor.write_head_file(force=True)
    other = AuditAnchor(KeySource(tmp_path / "audit.key"), tmp_path / "audit.head")
    other.committed(other.sign(3, "b" * 64))
    other.write_head_file(force=True)

    assert anchor.read_head_file() == anchor.sign(5, "a" * 64)
    assert stat.S_IMODE((tmp_path / "audit.head").stat().st_mode) == 0o600


def test_chaining_onto_its_own_last_head_skips_no_check_that_matters(tmp_path: Path) -> None:
    """The head this process committed is trusted as is; anything else stored there is checked."""
    anchor = anchor_at(tmp_path)
    committed = anchor.sign(9, "a" * 64)
    anchor.committed(committed)

    anchor.check_chain_onto(committed)
    for forged in (committed._replace(mac="0" * 64), committed._replace(hash="b" * 64), committed._replace(seq=10)):
        with pytest.raises(AuditStoreError, match="not signed"):
            anchor.check_chain_onto(forged)
