"""Secrets the policy catalogue recognises never reach the audit store in clear, even ones the
audit log's built-in recogniser does not know."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.audit.chain import decode_row
from bastion.audit.events import CallRequested
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy, SecretRedactor, chain_redactors
from bastion.config import load_config
from bastion.gateway.catalogue_redaction import audit_redactor, catalogue_redactor, mask_catalogue_secrets
from bastion.gateway.gateway import open_audit

pytestmark = pytest.mark.anyio

# A Hugging Face token: in the catalogue (secrets.api_key), not in audit/redact.py's SECRET_FORMATS.
HF_TOKEN = "hf_" + "Zq7Xw2Lk9PvR4mTn8YcB3dHs6GjF1aQe5Uo0"
POSTGRES_URL = "postgresql://app:Wq8#zR2v!pL@db.internal:5432/prod"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_the_builtin_recogniser_alone_lets_these_through() -> None:
    """Otherwise the test below would prove nothing about the catalogue's part."""
    assert SecretRedactor()(f"use {HF_TOKEN}") == f"use {HF_TOKEN}"
    assert SecretRedactor()(POSTGRES_URL) == POSTGRES_URL


def test_the_catalogue_redactor_masks_each_secret_in_place() -> None:
    assert mask_catalogue_secrets(f"use {HF_TOKEN} now") == "use [REDACTED:huggingface_token] now"
    assert catalogue_redactor({"a": [POSTGRES_URL], "n": 3}) == {
        "a": ["postgresql://app:[REDACTED:connection_password]@db.internal:5432/prod"],
        "n": 3,
    }
    assert catalogue_redactor("nothing secret here, just words") == "nothing secret here, just words"


@pytest.mark.parametrize("mode", ["redacted", "full"])
async def test_the_gateway_audit_store_masks_catalogue_secrets_in_redacted_mode(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "bastion.yaml"
    config = {
        "data_dir": str(tmp_path / "data"),
        "servers": {"time": {"command": "true"}},
        "audit": {"mode": mode},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    store = open_audit(load_config(path))
    await store.open()
    try:
        arguments = {"text": f"token {HF_TOKEN}", "dsn": POSTGRES_URL}
        await store.record(CallRequested(method="tools/call", tool="t", arguments=arguments))
        [row] = [decode_row(r) for r in store.rows(EventQuery(types=("call.requested",)), newest_first=False)]
    finally:
        await store.close()
    stored = str(row.details["arguments"])
    if mode == "full":  # full mode stores arguments as they are, by the operator's choice
        assert HF_TOKEN in stored
        return
    assert HF_TOKEN not in stored
    assert "Wq8#zR2v!pL" not in stored
    assert row.details["arguments"]["text"] == "token [REDACTED:huggingface_token]"


_SECRETS = [
    HF_TOKEN,
    POSTGRES_URL,
    "AKIAIOSFODNN7EXAMPLE",
    "password=hunter22",
    "Bearer abcdefgh12345678",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "x" * 3000,
    f"{'y' * 2100} {HF_TOKEN}",
    "[REDACTED]",
    "",
]
_KEYS = st.sampled_from(["text", "password", "api_key", "token", "dsn", "content", "auth", "n", "Secret"])
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.sampled_from(_SECRETS) | st.text()
)
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_KEYS, inner, max_size=4)
        | st.dictionaries(_KEYS, inner, max_size=3).map(MappingProxyType)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_LIKE)
def test_the_one_walk_redactor_stores_what_the_chained_redactors_store(value: Any) -> None:
    """`audit_redactor()` walks each payload once; what it stores is what the two chained walks stored."""
    chained = PayloadPolicy("redacted", chain_redactors(SecretRedactor(), catalogue_redactor))
    one_walk = PayloadPolicy("redacted", audit_redactor())

    assert one_walk.apply(value) == chained.apply(value)
    assert audit_redactor()(value) == chain_redactors(SecretRedactor(), catalogue_redactor)(value)
