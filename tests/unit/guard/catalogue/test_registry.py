import re
from pathlib import Path

from bastion.guard.policy.catalogue import CATALOGUE, FAMILIES, Entry, Severity
from bastion.model import Decision

DOCS = Path(__file__).resolve().parents[4] / "docs" / "catalogue.md"


def test_catalogue_has_at_least_70_entries_in_every_family():
    assert len(CATALOGUE) >= 70
    assert {e.family for e in CATALOGUE.values()} == set(FAMILIES)


def test_every_entry_is_complete_and_distinct():
    descriptions: set[str] = set()
    titles: set[str] = set()
    for key, e in CATALOGUE.items():
        assert isinstance(e, Entry)
        assert key == e.id
        assert re.fullmatch(r"[a-z]+\.[a-z0-9_]+", e.id), e.id
        assert e.id.split(".")[0] == e.family
        assert isinstance(e.severity, Severity)
        assert e.default in (Decision.DENY, Decision.ASK)
        assert len(e.description) > 20
        assert e.description not in descriptions, e.id
        assert e.title not in titles, e.id
        descriptions.add(e.description)
        titles.add(e.title)


def test_every_entry_is_documented():
    text = DOCS.read_text()
    documented = set(re.findall(r"^\| `([a-z]+\.[a-z0-9_]+)` \|", text, re.M))
    missing = sorted(set(CATALOGUE) - documented)
    assert not missing, f"add these entries to docs/catalogue.md: {missing}"
    stale = sorted(documented - set(CATALOGUE))
    assert not stale, f"docs/catalogue.md lists entries that do not exist: {stale}"


def test_documented_severity_and_default_match():
    text = DOCS.read_text()
    for e in CATALOGUE.values():
        row = re.search(rf"^\| `{re.escape(e.id)}` \|[^\n]*\| {e.severity.value} \| {e.default.value} \|", text, re.M)
        assert row, f"docs/catalogue.md row of {e.id} must show severity {e.severity} and default {e.default}"
