"""Every page renders for a signed-in viewer, over real stores."""

from __future__ import annotations

import pytest

from bastion.admin.tokens import Role
from tests.unit.web.conftest import Dash

pytestmark = pytest.mark.anyio

PAGES = ["/ui/", "/ui/approvals", "/ui/audit", "/ui/servers", "/ui/agents", "/ui/policy"]


@pytest.mark.parametrize("path", PAGES)
async def test_each_page_renders_for_a_viewer(dash: Dash, path: str) -> None:
    dash.hold()
    http, _ = await dash.signed_in(Role.VIEWER)
    page = await http.get(path)
    assert page.status_code == 200, page.text
    assert "viewer-person" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
