"""A signed head of the audit chain: what `bastion audit head` prints and `--expect` takes."""

from __future__ import annotations

from typing import NamedTuple


class SignedHead(NamedTuple):
    """A head of the chain: the last sequence number, its hash, and the key's signature of both."""

    seq: int
    hash: str
    mac: str = ""

    def token(self) -> str:
        """`seq:hash:mac`, what `bastion audit head` prints and `--expect` takes."""
        return f"{self.seq}:{self.hash}:{self.mac}"

    @classmethod
    def parse(cls, text: str) -> SignedHead:
        """A head from `seq:hash[:mac]`. Raises `ValueError` for anything else."""
        parts = text.strip().split(":")
        if len(parts) not in (2, 3) or not parts[0].isdigit() or not _is_hex(parts[1], 64):
            raise ValueError(f"{text!r} is not an audit head (seq:hash[:mac], as `bastion audit head` prints)")
        mac = parts[2] if len(parts) == 3 else ""
        if mac and not _is_hex(mac, 64):
            raise ValueError(f"{text!r}: the signature is not 64 hex digits")
        return cls(int(parts[0]), parts[1], mac)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)
