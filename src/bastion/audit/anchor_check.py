"""Verifying a log against its anchor (`anchor.py`): its head is signed, and it contains the
head file's head and the head an operator pinned (`verify --expect`)."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.audit.anchor import AuditAnchor, containment_problem
from bastion.audit.chain import Checkpoint
from bastion.audit.head import SignedHead
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader, AuditStoreError

UNANCHORED = (
    "the shared audit log is not anchored: set BASTION_AUDIT_KEY (or audit.key_file), the same on every "
    "replica, so that truncating or rolling it back is detected (docs/audit.md)"
)


@dataclass(frozen=True, slots=True)
class AnchorProblem:
    """Why the log fails its anchor, and the first sequence number concerned."""

    seq: int
    problem: str


def check_anchor(
    reader: AuditReader, start: Checkpoint | None, anchor: AuditAnchor | None, expect: SignedHead | None
) -> AnchorProblem | None:
    """The first way `reader`'s log (whose chain is otherwise intact) fails `anchor` and `expect`.

    Raises `AuditStoreError` when the key cannot be loaded (no anchor can then be checked)."""
    head = reader.signed_head()
    if head is None:
        return AnchorProblem(1, "the log has no chain head: it was emptied or replaced")

    def hash_at(seq: int) -> str | None:
        found = next(iter(reader.rows(EventQuery(), newest_first=False, cursor=seq - 1, limit=1)), None)
        return found.hash if found is not None and found.seq == seq else None

    def contains(expected: SignedHead, source: str) -> AnchorProblem | None:
        problem = containment_problem(head, start, hash_at, expected, source)
        return AnchorProblem(min(expected.seq, head.seq + 1), problem) if problem is not None else None

    if anchor is not None:
        key = anchor.key()
        if (head.seq > 0 or head.mac) and not key.signs(head):
            return AnchorProblem(
                head.seq,
                f"the log's head ({head.seq}) is not signed by the audit key: the log was rewritten, "
                "truncated or replaced outside Bastion",
            )
        try:
            on_file = anchor.read_head_file()
        except AuditStoreError as exc:
            return AnchorProblem(head.seq, str(exc))
        if on_file is None and expect is None:
            return AnchorProblem(
                head.seq,
                f"no head file at {anchor.head_file}: it was removed, or this machine does not run the "
                "gateway (pass --expect with the head `bastion audit head` printed)",
            )
        if on_file is not None:
            if not key.signs(on_file):
                return AnchorProblem(on_file.seq, f"the head file {anchor.head_file} is not signed by the audit key")
            if (problem := contains(on_file, f"the head file {anchor.head_file}")) is not None:
                return problem
        if expect is not None and expect.mac and not key.signs(expect):
            return AnchorProblem(expect.seq, "the expected head's signature is not the audit key's")
    if expect is not None:
        return contains(expect, "the expected head")
    return None
