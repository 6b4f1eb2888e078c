"""`VerifiedTokens`: tokens verified against a store's copy of the active ones, remembered with that copy.

The stores' own tests (`test_tokens.py`, both backends) verify a token, then revoke it (in the
same process and from another) or let it expire, and find it refused: through this memory."""

from __future__ import annotations

import pytest

from bastion.auth import tokens
from bastion.auth import verified_tokens as verified
from bastion.auth.tokens import ActiveTokens, new_token, token_hash
from bastion.auth.verified_tokens import VerifiedTokens
from bastion.model import Principal

NOW = 1_000_000.0


def copy_with(*made: tuple[tokens.TokenInfo, str]) -> ActiveTokens:
    """A store's copy of the active tokens, as `active_tokens` builds one."""
    return {info.id: (token_hash(token), info) for info, token in made}


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens hashed to be verified."""
    seen: list[str] = []
    real = tokens.token_hash

    def counting(token: str) -> str:
        seen.append(token)
        return real(token)

    monkeypatch.setattr(tokens, "token_hash", counting)
    return seen


def test_a_token_verified_against_a_copy_is_not_hashed_again_for_that_copy(hashed: list[str]) -> None:
    info, token = new_token("claude", None, None, NOW)
    active = copy_with((info, token))
    memory = VerifiedTokens()
    expected = Principal("claude", None, "token", info.id)
    assert memory.principal(token, active, NOW) == expected
    assert memory.principal(token, active, NOW + 1) == expected
    assert hashed == [token]

    reloaded = dict(active)  # the store reloaded its copy (the same tokens): verified afresh
    assert memory.principal(token, reloaded, NOW) == expected
    assert hashed == [token, token]


def test_a_token_missing_from_the_new_copy_is_refused() -> None:
    info, token = new_token("claude", None, None, NOW)
    memory = VerifiedTokens()
    assert memory.principal(token, copy_with((info, token)), NOW) is not None
    assert memory.principal(token, {}, NOW) is None  # revoked: the reloaded copy does not have it


def test_a_request_still_verifying_against_the_old_copy_leaves_nothing_for_the_new_one() -> None:
    """A thread that read the store's copy before a revocation verifies against that copy: what it
    remembers must stay with it, and not let the revoked token through the new copy."""
    info, token = new_token("claude", None, None, NOW)
    old = copy_with((info, token))
    memory = VerifiedTokens()
    assert memory.principal(token, {}, NOW) is None  # the new copy (revoked) seen first
    assert memory.principal(token, old, NOW) is not None  # the late request, against the old copy
    assert memory.principal(token, {}, NOW) is None


def test_expiry_is_checked_on_every_request() -> None:
    info, token = new_token("claude", None, 60, NOW)
    active = copy_with((info, token))
    memory = VerifiedTokens()
    assert memory.principal(token, active, NOW + 59) is not None
    assert memory.principal(token, active, NOW + 60) is None


def test_a_token_that_fails_is_not_remembered(hashed: list[str]) -> None:
    info, token = new_token("claude", None, None, NOW)
    active = copy_with((info, token))
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")  # same public id, wrong secret
    memory = VerifiedTokens()
    assert memory.principal(forged, active, NOW) is None
    assert memory.principal(forged, active, NOW) is None
    assert hashed == [forged, forged]  # checked each time, never taken for known
    assert memory.principal(token, active, NOW) is not None


def test_at_most_max_kept_are_remembered(monkeypatch: pytest.MonkeyPatch, hashed: list[str]) -> None:
    monkeypatch.setattr(verified, "MAX_KEPT", 2)
    made = [new_token(f"agent{n}", None, None, NOW) for n in range(3)]
    active = copy_with(*made)
    memory = VerifiedTokens()
    for _ in range(2):
        for info, token in made:
            assert memory.principal(token, active, NOW) == Principal(info.agent, None, "token", info.id)
    assert hashed.count(made[2][1]) == 2  # the third is verified each time
    assert hashed.count(made[0][1]) == 1
