"""The provenance chain on the call page, in a real browser (Chromium via Playwright).

A real agent reads a poisoned email through a real stdio MCP server (tests/e2e/servers/
poisoned_server.py), then sends money to the IBAN it planted; provenance holds that call. The
held call's page names the poisoned result (server, tool, correlation id, detector and span)
and links to its page; that page lists the held call and links back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from bastion.admin.tokens import Role
from bastion.audit.query import EventQuery
from bastion.audit.search import search
from bastion.config import load_config
from bastion.gateway.gateway import Gateway, open_admin_token_store
from tests.e2e.conftest import SERVERS_DIR, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.servers.poisoned_server import ATTACKER_IBAN

playwright_api = pytest.importorskip("playwright.async_api")

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
SERVER = {"command": sys.executable, "args": [str(SERVERS_DIR / "poisoned_server.py")]}
POLICY = {"rules": [{"name": "pay", "match": {"tool": "send_money"}, "action": "allow", "skip_catalogue": "comm.*"}]}

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)", allow_module_level=True)


def first_seq(gateway: Gateway, query: EventQuery) -> tuple[int, str]:
    [event] = search(gateway.audit, query).events
    assert event.correlation_id is not None
    return event.seq, event.correlation_id


async def test_a_held_call_links_to_the_poisoned_result_and_back(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = playwright_api.expect
    path = write_config(tmp_path, {"mail": SERVER}, policy=POLICY, approvals={"wait": 0})
    gateway = Gateway(load_config(path))
    with anyio.fail_after(150):
        async with serving(gateway), playwright_api.async_playwright() as pw:
            assert gateway.tokens is not None
            _, agent_token = gateway.tokens.create("assistant")
            async with http_client(gateway, "mail", agent_token) as agent:
                await agent.call_tool("read_inbox", {"folder": "inbox"})
                held = await agent.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 100})
            assert held.is_error is True
            await gateway.audit.flush()
            held_seq, held_id = first_seq(gateway, EventQuery(types=("call.requested",), tool="send_money"))
            poisoned_seq, poisoned_id = first_seq(gateway, EventQuery(types=("call.requested",), tool="read_inbox"))
            [verdict] = search(gateway.audit, EventQuery(types=("call.verdict",), correlation_id=held_id)).events
            assert verdict.details["source_call"] == poisoned_id, "the verdict names its source in a field of its own"

            store = open_admin_token_store(gateway.config)
            _, viewer_token = store.create("auditor", Role.VIEWER)
            store.close()
            chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            context = await chromium.new_context(base_url=gateway.base_url, viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await page.goto("/ui/")
            await page.fill("#token", viewer_token)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{gateway.base_url}/ui/")

            # The held call: where its value came from, with a link there.
            await page.goto(f"/ui/audit/events/{held_seq}")
            await expect(page.locator("#call-what")).to_have_text("mail/send_money")
            await expect(page.locator("#call-reason")).to_contain_text("first appeared in a result of mail.read_inbox")
            source = page.locator("#call-source")
            await expect(source.locator("#source-link")).to_have_text("mail/read_inbox")
            await expect(source.locator("#source-call")).to_have_text(poisoned_id)
            await expect(source.locator("#source-detectors")).to_contain_text("framing")
            await expect(source.locator("#source-findings")).to_contain_text("content[0].text[")
            await page.screenshot(path=str(ARTIFACTS / "call-provenance-held.png"), full_page=True)

            # Following the link opens the poisoned result's page, which lists the held call.
            await source.locator("#source-link").click()
            await page.wait_for_url(f"{gateway.base_url}/ui/audit/events/{poisoned_seq}")
            await expect(page.locator("#call-what")).to_have_text("mail/read_inbox")
            await expect(page.locator("main")).to_contain_text(poisoned_id)
            caused = page.locator("#call-caused .caused-link")
            await expect(caused).to_have_count(1)
            await expect(caused).to_have_text("mail/send_money")
            await page.screenshot(path=str(ARTIFACTS / "call-provenance-source.png"), full_page=True)
            await caused.click()
            await page.wait_for_url(f"{gateway.base_url}/ui/audit/events/*")
            await expect(page.locator("#call-what")).to_have_text("mail/send_money")
            await chromium.close()
