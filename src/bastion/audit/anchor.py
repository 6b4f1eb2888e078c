"""Anchoring the audit log where its database cannot rewrite it: a key, a signed head, a head file.

The hash chain shows that no event was edited, inserted or reordered, but whoever can
write the database can also truncate the chain, empty it, or put back an older copy, and
recompute every hash after an edit: an unkeyed chain is consistent after all of these. So:

- A secret key is kept outside the database: `BASTION_AUDIT_KEY`, or the key file
  (`data_dir/audit.key` by default, created 0600 at the first start; PostgreSQL replicas
  share one key).
- Every append signs the new head of the chain, an HMAC-SHA256 of its sequence number and
  hash, in the same transaction (`audit_head.mac`): a head the database writer sets by
  itself does not carry a valid signature. Before it appends, a writer checks the head it
  chains onto is signed, and not older than one it has seen: it refuses to launder a
  rewritten log by signing on top of it.
- The writer leaves the latest signed head in the head file (`data_dir/audit.head`),
  outside the database: at most `HEAD_FILE_INTERVAL_S` after a commit (at most once per
  interval, off the callers' path: after a batch's callers are answered, or when the writer
  would otherwise sleep), and when the store closes. `bastion audit verify` requires the
  log to contain that head: a truncated, emptied or rolled-back log does not.
- `bastion audit head` prints the signed head, for an operator to keep elsewhere (a SIEM,
  a ticket), and `bastion audit verify --expect HEAD` requires the log to contain it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion.audit.chain import GENESIS_HASH, Checkpoint
from bastion.audit.head import SignedHead
from bastion.audit.private_files import write_private
from bastion.audit.store import AuditStoreError

KEY_ENV = "BASTION_AUDIT_KEY"
MIN_KEY_CHARS = 32
HEAD_FILE_INTERVAL_S = 1.0
"""While the writer is busy, the head file is rewritten at most this often."""
_CONTEXT = b"bastion-audit-head-v1"
_SEAL_CONTEXT = b"bastion-audit-pending-v1"


class AuditKey:
    """The secret the heads are signed with."""

    __slots__ = ("_sealer", "_secret")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._sealer = hmac.new(secret, b"%s\n" % _SEAL_CONTEXT, hashlib.sha256)
        """The seal's HMAC with its key and context already taken in: each seal copies it, where
        `hmac.digest` would set the key and look the digest up again (after 20 ms idle, 42 µs
        against 74, in every lone call's write-ahead commit: `benchmarks/bench_front_cold.py`)."""

    def sign(self, seq: int, digest: str) -> str:
        message = b"%s\n%d\n%s" % (_CONTEXT, seq, digest.encode("ascii", "replace"))
        return hmac.digest(self._secret, message, "sha256").hex()

    def signs(self, head: SignedHead) -> bool:
        """Whether `head.mac` is this key's signature of `head`."""
        return bool(head.mac) and hmac.compare_digest(self.sign(head.seq, head.hash), head.mac)

    def seal(self, data: bytes) -> str:
        """An HMAC of `data`, a record not yet in the chain (`sqlite_pending.py`); never a head's."""
        sealing = self._sealer.copy()
        sealing.update(data)
        return sealing.hexdigest()


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where the key is: `BASTION_AUDIT_KEY` (given as `env`), else `path`."""

    path: Path
    env: str | None = None

    def load(self, *, create: bool) -> AuditKey:
        """The key. With `create`, a missing key file is made (32 random bytes, hex, mode 0600).
        Raises `AuditStoreError` when there is none, or the file is readable by others or too short."""
        if self.env is not None:
            if len(self.env) < MIN_KEY_CHARS:
                raise AuditStoreError(f"{KEY_ENV} is shorter than {MIN_KEY_CHARS} characters")
            return AuditKey(self.env.encode("utf-8"))
        if create and not self.path.exists():
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                write_private(self.path, secrets.token_hex(32) + "\n", exclusive=True)
        try:
            info = self.path.stat()
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise AuditStoreError(
                f"no audit key at {self.path} (and {KEY_ENV} is unset): the log's signed head cannot be checked; "
                "the gateway creates it at its first start"
            ) from None
        except OSError as exc:
            raise AuditStoreError(f"cannot read the audit key {self.path}: {exc}") from exc
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise AuditStoreError(f"the audit key {self.path} is readable by others: chmod 600 {self.path}")
        if len(text) < MIN_KEY_CHARS:
            raise AuditStoreError(f"the audit key {self.path} is shorter than {MIN_KEY_CHARS} characters")
        return AuditKey(text.encode("utf-8"))


class AuditAnchor:
    """What a writer signs heads with, and where it leaves the latest one (see the module docstring)."""

    def __init__(self, keys: KeySource, head_file: Path) -> None:
        self.keys = keys
        self.head_file = head_file
        self._key: AuditKey | None = None
        self._lock = threading.Lock()
        self._seen = 0
        """The highest sequence number this process has committed or chained onto."""
        self._pending: SignedHead | None = None
        self._committed: SignedHead | None = None
        """The newest head this process committed (signed by it)."""
        self._written_at = 0.0

    def key(self, *, create: bool = False) -> AuditKey:
        if self._key is None:
            self._key = self.keys.load(create=create)
        return self._key

    def sign(self, seq: int, digest: str) -> SignedHead:
        return SignedHead(seq, digest, self.key(create=True).sign(seq, digest))

    def seal(self, data: bytes) -> str:
        """The key's seal of a record waiting to be chained (see `AuditKey.seal`)."""
        return self.key(create=True).seal(data)

    def sealed(self, data: bytes, seal: str | None) -> bool:
        """Whether `seal` is the key's seal of `data`."""
        return bool(seal) and hmac.compare_digest(self.seal(data), seal or "")

    def check_chain_onto(self, head: SignedHead) -> None:
        """Raise unless a writer may chain onto `head`, the head the database holds: signed by
        the key (or the empty log's), and not older than a head this process saw."""
        # The head this process committed last carries the signature it made: no need to check it again.
        if head != self._committed and (head.seq > 0 or head.mac) and not self.key(create=True).signs(head):
            raise AuditStoreError(
                f"the audit log's head ({head.seq}) is not signed by this Bastion's key: the log was changed "
                "outside Bastion, or replicas use different keys; run `bastion audit verify`"
            )
        with self._lock:
            if head.seq < self._seen:
                raise AuditStoreError(
                    f"the audit log's head went back from {self._seen} to {head.seq}: newest events removed, "
                    "or an older copy restored; run `bastion audit verify`"
                )

    def committed(self, head: SignedHead) -> None:
        """`head` is committed: leave it in the head file at the next `write_head_file`."""
        with self._lock:
            if head.seq >= self._seen:
                self._seen = head.seq
                self._pending = head
                self._committed = head

    def head_file_due(self) -> float | None:
        """When (`time.monotonic`) a committed head should go to the head file; None: nothing to write."""
        with self._lock:
            return None if self._pending is None else self._written_at + HEAD_FILE_INTERVAL_S

    def write_head_file(self, *, force: bool = False) -> None:
        """Write the newest committed head to the head file, at most once per `HEAD_FILE_INTERVAL_S`
        unless `force`d, and never over a later head."""
        with self._lock:
            pending = self._pending
            if pending is None or (not force and time.monotonic() < self._written_at + HEAD_FILE_INTERVAL_S):
                return
            self._pending = None
            self._written_at = time.monotonic()
        current = self.read_head_file_or_none()
        if current is not None and current.seq >= pending.seq:
            return
        record = {"seq": pending.seq, "hash": pending.hash, "mac": pending.mac, "time": time.time()}
        write_private(self.head_file, json.dumps(record) + "\n")

    def read_head_file_or_none(self) -> SignedHead | None:
        """The head in the head file; None if there is no file or it cannot be read."""
        try:
            return self.read_head_file()
        except AuditStoreError:
            return None

    def read_head_file(self) -> SignedHead | None:
        """The head in the head file, None if there is none. Raises `AuditStoreError` if it is garbled."""
        try:
            record = json.loads(self.head_file.read_text(encoding="utf-8"))
            return SignedHead(int(record["seq"]), str(record["hash"]), str(record["mac"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditStoreError(f"the audit head file {self.head_file} cannot be read: {exc}") from exc


def anchor_at(data_dir: Path, key_file: Path | None = None, head_file: Path | None = None) -> AuditAnchor:
    """The anchor of a log whose key and head file are in `data_dir` unless given (`BASTION_AUDIT_KEY` wins)."""
    keys = KeySource(key_file or data_dir / "audit.key", os.environ.get(KEY_ENV) or None)
    return AuditAnchor(keys, head_file or data_dir / "audit.head")


HashAt = Callable[[int], "str | None"]
"""The hash of the event at a sequence number, None when the log has no such event."""


def containment_problem(
    head: SignedHead, start: Checkpoint | None, hash_at: HashAt, expected: SignedHead, source: str
) -> str | None:
    """Why a log whose head is `head` (and whose retention checkpoint is `start`) does not
    contain `expected`, which `source` names; None when it does (or pruned past it)."""
    if expected.seq > head.seq:
        return (
            f"the log ends at {head.seq} but {source} says {expected.seq}: "
            "newest event(s) removed, the log emptied, or an older copy restored"
        )
    if expected.seq == 0:
        found: str | None = GENESIS_HASH
    elif start is not None and expected.seq <= start.seq:
        found = start.hash if expected.seq == start.seq else expected.hash  # pruned by retention: attested
    elif expected.seq == head.seq:
        found = head.hash
    else:
        found = hash_at(expected.seq)
    if found != expected.hash:
        return (
            f"the log does not contain {source}'s event {expected.seq} (hash {expected.hash[:12]}...): "
            "rewritten, or replaced by another log"
        )
    return None


def opening_check(
    anchor: AuditAnchor, head: SignedHead, start: Checkpoint | None, hash_at: HashAt
) -> SignedHead | None:
    """What a writer checks when it opens the log whose head is `head`: the head file's head
    is in the log, and `head` is signed. Returns the head to sign and store when the log is
    new or predates anchoring (unsigned, and no head file yet: trusted on first use). Raises
    `AuditStoreError` when the log fails a check, so that it is not signed over."""
    key = anchor.key(create=True)
    on_file = anchor.read_head_file()
    adopted: SignedHead | None = None
    if on_file is not None:
        if not key.signs(on_file):
            raise AuditStoreError(f"the audit head file {anchor.head_file} is not signed by this Bastion's key")
        problem = containment_problem(head, start, hash_at, on_file, f"the head file {anchor.head_file}")
        if problem is not None:
            raise AuditStoreError(
                f"{problem}; run `bastion audit verify`, and once the log is accounted for move "
                f"{anchor.head_file} aside to accept it as it is"
            )
    if not head.mac and (head.seq == 0 or on_file is None):  # a new log, or one from before anchoring
        adopted = anchor.sign(head.seq, head.hash)
    else:
        anchor.check_chain_onto(head)
    anchor.committed(adopted or head)
    return adopted
