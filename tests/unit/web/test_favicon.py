"""The dashboard's icon: linked from every page and served at `/favicon.ico`, where browsers ask for it unprompted."""

from __future__ import annotations

import pytest

from bastion.admin.tokens import Role
from bastion.web.app import FAVICON
from tests.unit.web.conftest import Dash

pytestmark = pytest.mark.anyio

ICO_MAGIC = b"\x00\x00\x01\x00"


@pytest.mark.parametrize("path", ["/favicon.ico", "/ui/static/favicon.ico"])
async def test_the_icon_is_served_without_a_session(dash: Dash, path: str) -> None:
    answer = await dash.client().get(path)

    assert answer.status_code == 200
    assert answer.content == FAVICON.read_bytes()
    assert answer.content.startswith(ICO_MAGIC)
    assert answer.headers["content-type"] in {"image/x-icon", "image/vnd.microsoft.icon"}
    assert "cache-control" not in answer.headers  # an icon, not a page: the browser may keep it


async def test_every_page_links_the_icon(dash: Dash) -> None:
    http, _ = await dash.signed_in(Role.VIEWER)
    for path in ("/ui/", "/ui/audit", "/ui/policy"):
        page = await http.get(path)
        assert '<link rel="icon" href="/ui/static/favicon.ico">' in page.text
