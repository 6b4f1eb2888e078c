"""The call page in a real browser (Chromium via Playwright): a denied, a held-then-approved and an allowed call.

A real agent calls a real `mcp-server-time` through an in-process gateway; an approver decides
the held call in the dashboard. Each call's page is opened, checked for what a person reads
(verdict, rule, reason, approver, latency, arguments, result, masked secret) and screenshotted
under tests/artifacts/dashboard/ (ignored by git).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.admin.tokens import Role
from bastion.audit.query import EventQuery
from bastion.audit.search import search
from bastion.config import load_config
from bastion.gateway.gateway import Gateway, open_admin_token_store
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
STRIPE_KEY = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
POLICY = {
    "rules": [
        {
            "name": "no-berlin",
            "match": {"server": "time", "tool": "get_current_time"},
            "when": {"arguments.timezone": {"equals": "Europe/Berlin"}},
            "action": "deny",
            "reason": "Berlin is off limits",
        },
        {
            "name": "asia-needs-a-look",
            "match": {"server": "time", "tool": "get_current_time"},
            "when": {"arguments.timezone": {"glob": "Asia/*"}},
            "action": "ask",
            "reason": "calls about Asia are checked by a person",
        },
    ]
}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)", allow_module_level=True)


def call_seq(gateway: Gateway, zone: str) -> int:
    """The sequence number of the `call.requested` event of the call about `zone`."""
    [event] = search(gateway.audit, EventQuery(types=("call.requested",), text=zone)).events
    return event.seq


async def test_the_call_page_of_a_denied_a_held_then_approved_and_an_allowed_call(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    missing: list[str] = []
    results: dict[str, Any] = {}
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    gateway = Gateway(load_config(write_config(tmp_path, servers, policy=POLICY, approvals={"wait": 120})))
    with anyio.fail_after(150):
        async with serving(gateway), playwright_api.async_playwright() as pw:
            assert gateway.tokens is not None
            _, agent_token = gateway.tokens.create("tokyo-bot")
            store = open_admin_token_store(gateway.config)
            _, approver_token = store.create("approver-person", Role.APPROVER)
            store.close()
            chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            context = await chromium.new_context(base_url=gateway.base_url, viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
            await page.goto("/ui/")
            await page.fill("#token", approver_token)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{gateway.base_url}/ui/")

            async with http_client(gateway, "time", agent_token) as agent, anyio.create_task_group() as tg:
                results["lima"] = await agent.call_tool("get_current_time", {"timezone": "America/Lima"})
                results["berlin"] = await agent.call_tool(
                    "get_current_time", {"timezone": "Europe/Berlin", "api_key": STRIPE_KEY}
                )

                async def held() -> None:
                    results["tokyo"] = await agent.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})

                tg.start_soon(held)
                await page.goto("/ui/approvals")
                await page.locator("article.approval").first.get_by_role("button", name="Approve", exact=True).click()
                await expect(page.locator(".notice")).to_contain_text("approved tokyo-bot's call")
            await gateway.audit.flush()
            assert results["berlin"].is_error is True
            assert results["tokyo"].is_error is False

            # Denied: the rule and its reason; the secret in the arguments masked; nothing returned.
            await page.goto(f"/ui/audit/events/{call_seq(gateway, 'Berlin')}")
            await expect(page.locator("#call-status")).to_have_text("Denied")
            await expect(page.locator("#call-what")).to_have_text("time/get_current_time")
            await expect(page.locator("#call-agent")).to_contain_text("tokyo-bot")
            await expect(page.locator("#call-rule")).to_have_text("policy/rule:no-berlin")
            await expect(page.locator("#call-reason")).to_contain_text("Berlin is off limits")
            await expect(page.locator("#call-arguments")).to_contain_text("Europe/Berlin")
            await expect(page.locator("#call-arguments .masked")).to_be_visible()
            await expect(page.locator("#call-result")).to_contain_text("the server was never called")
            assert STRIPE_KEY not in await page.content()
            await expect(page.locator("#call-approval")).to_have_count(0)
            await page.screenshot(path=str(ARTIFACTS / "call-denied.png"), full_page=True)
            await page.set_viewport_size({"width": 390, "height": 900})
            await page.screenshot(path=str(ARTIFACTS / "call-denied-390.png"), full_page=True)
            await page.set_viewport_size({"width": 1280, "height": 900})

            # Held, then approved: who approved it and when, the latency of the wait.
            await page.goto(f"/ui/audit/events/{call_seq(gateway, 'Tokyo')}")
            await expect(page.locator("#call-status")).to_have_text("Approved")
            await expect(page.locator("#call-approval")).to_contain_text("calls about Asia are checked by a person")
            await expect(page.locator("#approval-decision")).to_contain_text("approved")
            await expect(page.locator("#approval-by")).to_have_text("dashboard:approver-person")
            await expect(page.locator("#approval-at")).to_contain_text("UTC")
            await expect(page.locator("#call-latency")).to_contain_text(" ms")
            await expect(page.locator("#call-result")).to_contain_text("Asia/Tokyo")
            await page.screenshot(path=str(ARTIFACTS / "call-held-approved.png"), full_page=True)

            # Allowed: the result as a tree that folds; the raw events one click away.
            await page.goto(f"/ui/audit/events/{call_seq(gateway, 'Lima')}")
            await expect(page.locator("#call-status")).to_have_text("Allowed")
            await expect(page.locator("#call-verdict")).to_contain_text("allow")
            result = page.locator("#call-result")
            await expect(result.get_by_text("America/Lima", exact=True).first).to_be_visible()
            await result.locator("summary").first.click()
            await expect(result.get_by_text("America/Lima", exact=True).first).to_be_hidden()
            await result.locator("summary").first.click()
            timeline = page.locator("#raw-events ol.timeline")
            await expect(timeline).to_be_hidden()
            await page.locator("#raw-events > summary").click()
            await expect(timeline).to_be_visible()
            await expect(timeline.locator("> li")).to_have_count(3)
            await page.screenshot(path=str(ARTIFACTS / "call-allowed.png"), full_page=True)

            icon = await page.request.get("/favicon.ico")
            assert icon.status == 200
            await chromium.close()
    assert missing == []
    for name in ("call-denied", "call-held-approved", "call-allowed"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 0
