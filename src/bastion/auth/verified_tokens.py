"""The tokens a store has verified against its current copy of the active ones.

An agent sends the same token with every request. Verifying it parses it (a regular
expression), hashes it (SHA-256) and builds its `Principal`, before the call's write-ahead
record can start. `VerifiedTokens` keeps, for the copy of the active tokens a store holds now,
the tokens whose hash matched (with their `Principal`, which is frozen), so the next request
with one of them skips all three: after 20 ms idle, 21 µs against 99 over an empty baseline
(`benchmarks/bench_front_cold.py`). Its expiry is still checked on every request.

It is as safe as verifying afresh:

- only a token whose hash matched one of `active` is kept, and only with that copy: a store
  reloads its copy into a new dict whenever the tokens change (a revocation, a new token, an
  expiry date moved), and a copy that is not the very one a token was verified against
  finds nothing kept, so every token is verified afresh against it;
- what is kept is keyed by the token itself (a dict of str, whose hashing is randomized per
  process): a request with any other string is verified as before;
- a token that fails is never kept, so a flood of bad ones adds nothing; and at most
  `MAX_KEPT` are kept (beyond that they are verified each time, as before).

The entries for one copy live in the dict made with it: a thread that verifies against an
older copy writes into that copy's dict, never into the current one's.
"""

from __future__ import annotations

from bastion.auth.tokens import ActiveTokens, TokenInfo, principal_of, verified_info
from bastion.model import Principal

MAX_KEPT = 4096
"""Verified tokens kept per copy of the active ones (a gateway's agents, with room to spare)."""


class VerifiedTokens:
    """Verifies tokens against a store's copy of the active ones, remembering those that matched."""

    def __init__(self) -> None:
        self._kept: tuple[ActiveTokens | None, dict[str, tuple[TokenInfo, Principal]]] = (None, {})

    def principal(self, token: str, active: ActiveTokens, now: float) -> Principal | None:
        """The principal of `token` among `active` tokens at Unix time `now`, else None."""
        kept = self._kept
        if kept[0] is not active:
            kept = (active, {})
            self._kept = kept
        known = kept[1]
        found = known.get(token)
        if found is not None:
            info, principal = found
            return principal if info.state_at(now) == "active" else None  # expired since
        verified = verified_info(token, active)
        if verified is None:
            return None
        made = principal_of(verified, now)
        if made is not None and len(known) < MAX_KEPT:
            known[token] = (verified, made)  # a `Principal` is frozen: one per token is shared
        return made
