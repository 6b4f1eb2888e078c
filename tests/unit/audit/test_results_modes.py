"""`audit.results` (how results are stored, apart from arguments) and `audit.redact_pii`
(issue 13, item 4: results carry personal data), on every backend and from the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.audit.chain import decode_row
from bastion.audit.events import CallCompleted, CallRequested
from bastion.audit.pii import luhn_valid, pii_masker
from bastion.audit.query import EventQuery
from bastion.audit.redact import MASK, PayloadPolicy, ResultsMode
from bastion.config import ConfigError, load_config
from bastion.gateway.gateway import open_audit
from tests.unit.audit.conftest import Backend

pytestmark = pytest.mark.anyio
AT = 1_795_586_105.0
ARGUMENTS = {"sql": "select * from customers where email = 'ann@example.com'", "password": "hunter2"}
RESULT = {"rows": [{"name": "Ann", "email": "ann@example.com", "card": "4111 1111 1111 1111", "api_key": "k-1"}]}


def call(result: Any = RESULT) -> list[Any]:
    common: dict[str, Any] = {"agent": "bot", "server": "db", "correlation_id": "c1"}
    return [
        CallRequested(time=AT, method="tools/call", tool="read_query", arguments=ARGUMENTS, **common),
        CallCompleted(time=AT + 1, method="tools/call", tool="read_query", outcome="allowed", latency_ms=1.0,
                      result=result, result_size=321, **common),
    ]  # fmt: skip


REDACTED = {"rows": [{"name": "Ann", "email": "ann@example.com", "card": "4111 1111 1111 1111", "api_key": MASK}]}
STORED_RESULTS: list[tuple[ResultsMode | None, Any]] = [
    (None, REDACTED),
    ("redacted", REDACTED),
    ("full", RESULT),
    ("shape", {"rows": [{"name": "string", "email": "string", "card": "string", "api_key": "string"}]}),
    ("none", None),
]  # fmt: skip


@pytest.mark.parametrize(("results", "stored"), STORED_RESULTS)
async def test_results_are_stored_as_audit_results_says_and_arguments_as_mode_says(
    backend: Backend, results: ResultsMode | None, stored: Any
) -> None:
    store = backend.make(policy=PayloadPolicy("redacted", results=results))
    await store.open()
    for event in call():
        await store.record(event)
    await store.close()

    requested, completed = (decode_row(row) for row in store.rows(EventQuery(), newest_first=False))

    assert requested.details["arguments"] == {"sql": ARGUMENTS["sql"], "password": MASK}
    assert completed.details["result"] == stored
    assert completed.details["result_size"] == 321


@pytest.mark.parametrize("mode", ["full", "redacted"])
async def test_personal_data_is_masked_in_arguments_and_results(backend: Backend, mode: Any) -> None:
    store = backend.make(policy=PayloadPolicy(mode, pii=pii_masker(["email", "card"])))
    await store.open()
    for event in call():
        await store.record(event)
    await store.close()

    requested, completed = (decode_row(row) for row in store.rows(EventQuery(), newest_first=False))

    assert requested.details["arguments"]["sql"] == "select * from customers where email = '[REDACTED:email]'"
    row = completed.details["result"]["rows"][0]
    assert (row["email"], row["card"], row["name"]) == ("[REDACTED:email]", "[REDACTED:card]", "Ann")
    assert "ann@example.com" not in str(backend.sql("SELECT data FROM events", ()))


PII_TEXTS = [
    ("write to ann.lee@example.co.uk today", ["email", "phone", "card"], "write to [REDACTED:email] today"),
    ("call +44 20 7946 0958", ["phone"], "call [REDACTED:phone]"),
    ("call +1-415-555-0100 or (415) 555-0100", ["phone"], "call [REDACTED:phone] or [REDACTED:phone]"),
    ("call 415.555.0100", ["phone"], "call [REDACTED:phone]"),
    ("card 4111 1111 1111 1111 ok", ["card"], "card [REDACTED:card] ok"),
    ("card 5555-5555-5555-4444", ["card"], "card [REDACTED:card]"),
    ("card 378282246310005", ["card"], "card [REDACTED:card]"),
    # not personal data, or not of a kind asked for
    ("not a card 4111111111111112", ["card", "phone"], "not a card 4111111111111112"),
    ("on 2026-11-25 at 10:30, id 123456789012", ["phone", "card"], "on 2026-11-25 at 10:30, id 123456789012"),
    ("host 192.168.100.10, total 1234.56, +5", ["phone", "card"], "host 192.168.100.10, total 1234.56, +5"),
    ("ann@example.com", ["phone", "card"], "ann@example.com"),
    ("4111 1111 1111 1111", ["email"], "4111 1111 1111 1111"),
    ("zeros 0000000000000000", ["card"], "zeros 0000000000000000"),
]


@pytest.mark.parametrize(("text", "kinds", "masked"), PII_TEXTS)
def test_personal_data_recognised(text: str, kinds: list[Any], masked: str) -> None:
    masker = pii_masker(kinds)
    assert masker is not None
    assert masker(text) == masked


@pytest.mark.parametrize(
    ("digits", "valid"), [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True)]
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


async def test_the_config_sets_results_and_personal_data(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    audit = {"results": "shape", "redact_pii": ["email"]}
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "audit": audit, "servers": {}}))
    store = open_audit(load_config(path))
    await store.open()
    for event in call():
        await store.record(event)
    await store.close()

    requested, completed = (decode_row(row) for row in store.rows(EventQuery(), newest_first=False))

    assert requested.details["arguments"]["sql"].endswith("'[REDACTED:email]'")
    assert completed.details["result"] == STORED_RESULTS[3][1]


@pytest.mark.parametrize(
    ("audit", "fragment"),
    [({"results": "some"}, "audit.results"), ({"redact_pii": ["ssn"]}, "audit.redact_pii")],
)
def test_bad_settings_are_named(tmp_path: Path, audit: dict[str, Any], fragment: str) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "audit": audit, "servers": {}}))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert fragment in str(caught.value)
