"""The dashboard's audit page answers full-text search combined with every other filter (issue 16: 503 on SQLite)."""

from __future__ import annotations

import pytest

from bastion.admin.tokens import Role
from tests.unit.audit.test_filter_combinations import seed_events
from tests.unit.web.conftest import Dash

pytestmark = pytest.mark.anyio
FILTERS = [
    {"tool": "read_query"},
    {"agent": "alice"},
    {"server": "db"},
    {"type": "call.requested"},
    {"verdict": "allow"},
    {"since": "2026-11-25T05:55:08", "until": "2026-11-25T05:55:14"},
    {"tool": "read_query", "agent": "bob", "server": "files", "type": "call.completed", "verdict": "allowed"},
]


@pytest.mark.parametrize("filters", FILTERS)
async def test_text_search_with_other_filters_answers(dash: Dash, filters: dict[str, str]) -> None:
    for event in seed_events():
        await dash.audit.record(event, durable=False)
    await dash.audit.close()  # every event is now in the full-text index, which is where the join failed
    http, _ = await dash.signed_in(Role.VIEWER)

    page = await http.get("/ui/audit", params={"text": "customers", **filters})

    assert page.status_code == 200, page.text
    assert "cannot be read" not in page.text
