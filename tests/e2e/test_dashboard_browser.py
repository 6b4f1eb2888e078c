"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against a real gateway.

The gateway runs in-process in front of a real `mcp-server-time`; its policy holds calls
about Asia for approval. A real agent (the SDK's client over Streamable HTTP) makes the
calls; people sign in to the dashboard with admin tokens and decide them in the page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.admin.tokens import Role
from bastion.approvals.model import ApprovalState
from bastion.config import load_config
from bastion.gateway.gateway import Gateway, open_admin_token_store
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
HELD_ZONE = "Asia/Tokyo"
HOSTILE_ZONE = "Asia/<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
POLICY = {
    "rules": [
        {
            "name": "asia-needs-a-look",
            "match": {"server": "time", "tool": "get_current_time"},
            "when": {"arguments.timezone": {"glob": "Asia/*"}},
            "action": "ask",
            "reason": "calls about Asia are checked by a person",
        }
    ]
}
WIDTHS = (1280, 390)
PAGES = {
    "overview": "/ui/",
    "approvals": "/ui/approvals",
    "audit": "/ui/audit?range=1h",
    "servers": "/ui/servers",
    "agents": "/ui/agents",
    "policy": "/ui/policy",
}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)", allow_module_level=True)


@asynccontextmanager
async def dashboard_gateway(tmp_path: Path, wait: float = 120) -> AsyncIterator[tuple[Gateway, str, dict[Role, str]]]:
    """A serving gateway with the Asia rule, an agent token, and an admin token per role.

    A held call waits `wait` seconds for its decision (0: it is answered "queued" at once).
    """
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config_path = write_config(tmp_path, servers, policy=POLICY, approvals={"wait": wait})
    gateway = Gateway(load_config(config_path))
    async with serving(gateway):
        assert gateway.tokens is not None
        _, agent_token = gateway.tokens.create("tokyo-bot")
        store = open_admin_token_store(gateway.config)
        admins = {role: store.create(f"{role.label}-person", role)[1] for role in Role}
        store.close()
        yield gateway, agent_token, admins


@asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in_page(chromium: Any, base_url: str, token: str, width: int = 1280) -> Any:
    viewport = {"width": width, "height": 900}
    context = await chromium.new_context(base_url=base_url, viewport=viewport, accept_downloads=True)
    page = await context.new_page()
    await page.goto("/ui/")
    await page.wait_for_url("**/ui/login?next=*")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/ui/")
    return page


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


async def test_an_approver_approves_a_held_call_in_the_page_and_the_agent_call_completes(tmp_path: Path) -> None:
    expect = playwright_api.expect
    results: dict[str, Any] = {}
    with anyio.fail_after(150):
        async with (
            dashboard_gateway(tmp_path) as (gateway, agent_token, admins),
            browser() as chromium,
            http_client(gateway, "time", agent_token) as agent,
            anyio.create_task_group() as tg,
        ):
            approver = await signed_in_page(chromium, gateway.base_url, admins[Role.APPROVER])
            viewer = await signed_in_page(chromium, gateway.base_url, admins[Role.VIEWER])
            await approver.goto("/ui/approvals")
            await viewer.goto("/ui/approvals")
            await expect(approver.locator("#queue-empty")).to_be_visible()

            async def call(name: str, zone: str) -> None:
                results[name] = await agent.call_tool("get_current_time", {"timezone": zone})

            # Both calls are held; the open pages show them without being reloaded.
            tg.start_soon(call, "hostile", HOSTILE_ZONE)
            tg.start_soon(call, "tokyo", HELD_ZONE)
            cards = approver.locator("article.approval")
            await expect(cards).to_have_count(2, timeout=30_000)
            await expect(viewer.locator("article.approval")).to_have_count(2, timeout=30_000)

            # The viewer sees the calls but no way to decide them; the hostile text stays text.
            await expect(viewer.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
            hostile = approver.locator("article.approval", has_text="onerror")
            await expect(hostile.locator("pre.json")).to_contain_text("<script>window.__pwned=1</script>")
            for page in (approver, viewer):
                assert await page.evaluate("typeof window.__pwned") == "undefined"
            assert results == {}  # both agents are still waiting

            tokyo = approver.locator("article.approval", has_text=HELD_ZONE).filter(has_not_text="onerror")
            await expect(tokyo.locator("mark.flag")).to_have_text('"Asia/Tokyo"')
            await tokyo.get_by_role("button", name="Approve", exact=True).click()
            notice = approver.locator(".notice")
            await expect(notice).to_contain_text("approved tokyo-bot's call to time/get_current_time")

            await hostile.locator("input[name=reason]").fill("not a time zone")
            await hostile.get_by_role("button", name="Deny").click()
            await expect(approver.locator("#queue-empty")).to_be_visible()
            await expect(viewer.locator("#queue-empty")).to_be_visible(timeout=30_000)
            assert await approver.evaluate("typeof window.__pwned") == "undefined"
            assert gateway.approvals is not None
            decided = {a.arguments["timezone"]: a for a in gateway.approvals.list()}
    assert results["tokyo"].is_error is False, text_of(results["tokyo"])
    assert HELD_ZONE in text_of(results["tokyo"])
    assert results["hostile"].is_error is True
    assert "not a time zone" in text_of(results["hostile"])
    assert decided[HELD_ZONE].state is ApprovalState.APPROVED
    assert decided[HELD_ZONE].decided_by == "dashboard:approver-person"
    assert decided[HOSTILE_ZONE].state is ApprovalState.DENIED


async def test_search_the_audit_log_and_download_an_export(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    with anyio.fail_after(120):
        async with (
            dashboard_gateway(tmp_path) as (gateway, agent_token, admins),
            browser() as chromium,
        ):
            async with http_client(gateway, "time", agent_token) as agent:
                for zone in ("Europe/Paris", "America/Lima", "Europe/Oslo"):
                    assert (await agent.call_tool("get_current_time", {"timezone": zone})).is_error is False
            await gateway.audit.flush()
            page = await signed_in_page(chromium, gateway.base_url, admins[Role.VIEWER])
            await page.goto("/ui/audit")
            await page.fill("input[name=text]", "Lima")
            await page.select_option("select[name=type]", "call.requested")
            await page.get_by_role("button", name="Search").click()
            await page.wait_for_url("**/ui/audit?*text=Lima*")
            rows = page.locator("table.results tbody tr")
            await expect(rows).to_have_count(1)
            await rows.first.locator("a").first.click()
            await expect(page.locator("ol.timeline > li")).to_have_count(3)  # requested, verdict, completed
            await expect(page.locator("ol.timeline")).to_contain_text("America/Lima")
            await page.go_back()
            async with page.expect_download() as download_info:
                await page.click("#export-csv")
            download = await download_info.value
            saved = ARTIFACTS / "audit-export.csv"
            await download.save_as(saved)
    rows_out = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["type"] for r in rows_out] == ["call.requested"]
    assert "America/Lima" in rows_out[0]["arguments"]


async def test_screenshots_of_every_page_at_desktop_and_phone_widths(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with anyio.fail_after(150):
        async with (
            dashboard_gateway(tmp_path, wait=0) as (gateway, agent_token, admins),
            browser() as chromium,
            http_client(gateway, "time", agent_token) as agent,
        ):
            for zone in ("Europe/Paris", "America/Lima", HELD_ZONE):  # the last one is held
                await agent.call_tool("get_current_time", {"timezone": zone})
            page = await signed_in_page(chromium, gateway.base_url, admins[Role.ADMIN])
            await page.goto("/ui/approvals")
            await page.locator("article.approval").first.wait_for()
            for width in WIDTHS:
                await page.set_viewport_size({"width": width, "height": 900})
                for name, path in PAGES.items():
                    response = await page.goto(path)
                    assert response is not None
                    assert response.status == 200, name
                    await page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            await page.goto("/ui/approvals")
            await page.get_by_role("button", name="Approve", exact=True).click()
            await page.locator(".notice").wait_for()
    shots = {path.name: path.stat().st_size for path in ARTIFACTS.glob("*.png")}
    for width in WIDTHS:
        for name in PAGES:
            assert shots.get(f"{name}-{width}.png", 0) > 0
