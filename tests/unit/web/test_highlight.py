"""The flagged part of a held call's arguments, and the escaping of everything around it."""

from __future__ import annotations

import pytest

from bastion.alerts.model import Alert, AlertKind
from bastion.alerts.recent import RecentAlerts
from bastion.approvals.model import Approval
from bastion.auth.token_requests import parse_lifetime
from bastion.guard.policy.lint import CompiledPolicy
from bastion.guard.policy.paths import parse_argument_path
from bastion.web.highlight import Flags, HighlightedArguments, pretty_arguments


@pytest.mark.parametrize(
    ("pattern", "marked", "unmarked"),
    [
        ("arguments.amount", '<mark class="flag">5</mark>', '<mark class="flag">"EUR"'),
        ("arguments.items[1].sku", '<mark class="flag">&#34;b&#34;</mark>', '<mark class="flag">&#34;a&#34;'),
        ("arguments.items[*].sku", '<mark class="flag">&#34;a&#34;</mark>', '<mark class="flag">5'),
        ("arguments.items.sku", '<mark class="flag">&#34;b&#34;</mark>', '<mark class="flag">5'),
        ("arguments.**.sku", '<mark class="flag">&#34;a&#34;</mark>', '<mark class="flag">5'),
        ("arguments.items", '<mark class="flag">[', '<mark class="flag">5'),
    ],
)
def test_rule_paths_mark_what_they_select(pattern: str, marked: str, unmarked: str) -> None:
    arguments = {"amount": 5, "currency": "EUR", "items": [{"sku": "a"}, {"sku": "b"}]}
    html = str(pretty_arguments(arguments, Flags(patterns=(parse_argument_path(pattern),))))
    assert marked in html
    assert unmarked not in html


def test_catalogue_findings_are_marked_where_they_were_seen_and_everything_is_escaped() -> None:
    approval = Approval(
        id="a1",
        agent="bot",
        server="db",
        tool="run_query",
        arguments={"sql": "DROP TABLE customers", "note": "<b>hi</b>", "<k>": 1},
        rule="policy/catalogue:sql.drop",
        reason="drops a table",
        created_at=0,
        expires_at=1,
    )
    html = str(HighlightedArguments(CompiledPolicy())(approval))
    assert '<mark class="flag">&#34;DROP TABLE customers&#34;</mark>' in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html
    assert "&#34;&lt;k&gt;&#34;" in html
    assert "<b>" not in html


def test_recent_alerts_keep_the_newest_first_and_forward_each() -> None:
    forwarded = RecentAlerts()
    recent = RecentAlerts(forwarded, keep=2)
    for n in range(3):
        recent.emit(Alert(AlertKind.SERVER_CRASHED, f"crash {n}"))
    assert [a.summary for a in recent.latest()] == ["crash 2", "crash 1"]
    assert len(forwarded.latest()) == 3


@pytest.mark.parametrize(("text", "seconds"), [("", None), (None, None), ("90m", 5400.0), ("2d", 172800.0)])
def test_token_lifetimes(text: str | None, seconds: float | None) -> None:
    assert parse_lifetime(text) == seconds


@pytest.mark.parametrize("text", ["0", "soon", "-5"])
def test_bad_token_lifetimes(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_lifetime(text)
