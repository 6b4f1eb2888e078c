"""Full fidelity: what real servers offer reaches real agents through Bastion unchanged.

Every test runs the SDK client in both protocol eras through each front door, against
real upstreams: mcp-server-time and mcp-server-git (which speak 2026-07-28) and
server-everything (npm, handshake era only), so both directions of era translation run.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from tests.e2e.clients import connect, progress_recorder

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FRONT_MODES = [
    ("http", "legacy"),
    ("http", "2026-07-28"),
    ("sse", "legacy"),
    ("wrap", "legacy"),
    ("wrap", "2026-07-28"),
]


def needs_everything(gateway) -> None:
    if "everything" not in gateway.config_path.read_text():
        pytest.fail("npx is required for the server-everything tests (install Node.js)")


@pytest.mark.parametrize(("front", "mode"), FRONT_MODES)
async def test_time_and_git_tools(gateway, git_repo, front, mode):
    with anyio.fail_after(90):
        async with connect(gateway, "time", front=front, mode=mode) as client:
            converted = await client.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
            assert not converted.is_error
            assert "21:00" in converted.content[0].text
        async with connect(gateway, "git", front=front, mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"git_status", "git_log"} <= names
            log = await client.call_tool("git_log", {"repo_path": str(git_repo)})
            assert not log.is_error
            assert "first commit" in log.content[0].text


@pytest.mark.parametrize(("front", "mode"), FRONT_MODES)
async def test_everything_resources_prompts_completion_progress(gateway, front, mode):
    needs_everything(gateway)
    with anyio.fail_after(120):
        async with connect(gateway, "everything", front=front, mode=mode) as client:
            echoed = await client.call_tool("echo", {"message": "through bastion"})
            assert "through bastion" in echoed.content[0].text

            resources = await client.list_resources()
            uri = next(str(r.uri) for r in resources.resources if str(r.uri).endswith("architecture.md"))
            read = await client.read_resource(uri)
            assert isinstance(read.contents[0], types.TextResourceContents)
            assert len(read.contents[0].text) > 20

            templates = await client.list_resource_templates()
            assert any("{resourceId}" in t.uri_template for t in templates.resource_templates)

            prompt = await client.get_prompt("args-prompt", {"city": "Lisbon", "state": "Lisboa"})
            assert "Lisbon" in str(prompt.messages[0].content)

            completion = await client.complete(
                types.PromptReference(type="ref/prompt", name="completable-prompt"),
                {"name": "department", "value": "E"},
            )
            assert "Engineering" in completion.completion.values

            seen, on_progress = progress_recorder()
            done = await client.call_tool(
                "trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress
            )
            assert not done.is_error
            assert [p for p, _, _ in seen] == [1, 2, 3]
            assert all(total == 3 for _, total, _ in seen)


@pytest.mark.parametrize(("front", "mode"), FRONT_MODES)
async def test_cancellation_reaches_the_upstream(gateway, tmp_path, front, mode):
    marker = tmp_path / "cancelled"
    with anyio.fail_after(60):
        async with connect(gateway, "crashy", front=front, mode=mode) as client:
            started = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                started.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(_call_ignoring_cancel, client, str(marker), on_progress)
                await started.wait()
                tg.cancel_scope.cancel()
            await _wait_for_file(marker, within=20)
            # The shared session survives the cancellation.
            after = await client.call_tool("echo", {"text": "still here"})
            assert after.content[0].text == "still here"


async def _call_ignoring_cancel(client, marker: str, on_progress) -> None:
    await client.call_tool("wait_forever", {"marker": marker}, progress_callback=on_progress)


async def _wait_for_file(path: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while not await anyio.Path(path).exists():
        assert time.monotonic() < deadline, f"the upstream never saw the cancellation ({path} not written)"
        await anyio.sleep(0.05)


@pytest.mark.parametrize(("front", "mode"), [("http", "legacy"), ("http", "2026-07-28"), ("wrap", "legacy")])
async def test_upstream_killed_mid_call_fails_promptly_then_recovers(gateway, front, mode):
    with anyio.fail_after(60):
        async with connect(gateway, "crashy", front=front, mode=mode) as client:
            began = time.monotonic()
            result_or_error: object
            try:
                result_or_error = await client.call_tool("die_midway", {})
            except Exception as exc:
                result_or_error = exc
            elapsed = time.monotonic() - began
            text = str(result_or_error)
            assert "stopped while handling this request; it is restarted on the next request" in text, text
            assert elapsed < 15, f"the agent waited {elapsed:.1f} s for a dead upstream"
            again = await client.call_tool("echo", {"text": "restarted"})
            assert again.content[0].text == "restarted"


@pytest.mark.parametrize("front", ["http", "sse", "wrap"])
async def test_sampling_and_elicitation_reach_the_agent(gateway, front):
    needs_everything(gateway)
    asked: list[str] = []

    async def sampling(ctx, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append("sampling")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="sampled by the agent"), model="test-model"
        )

    async def elicitation(ctx, params) -> types.ElicitResult:
        asked.append("elicitation")
        return types.ElicitResult(action="decline")

    with anyio.fail_after(90):
        async with connect(
            gateway,
            "everything",
            front=front,
            mode="legacy",
            sampling_callback=sampling,
            elicitation_callback=elicitation,
        ) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "trigger-sampling-request" in names, names
            sampled = await client.call_tool("trigger-sampling-request", {"prompt": "hello", "maxTokens": 10})
            assert "sampled by the agent" in str(sampled.content)
            if "trigger-elicitation-request" in names:
                await client.call_tool("trigger-elicitation-request", {})
                assert "elicitation" in asked
    assert "sampling" in asked


@pytest.mark.parametrize("front", ["http", "wrap"])
async def test_logging_notifications_reach_the_agent(gateway, front):
    needs_everything(gateway)
    got = anyio.Event()
    messages: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        messages.append(params)
        got.set()

    with anyio.fail_after(90):
        async with connect(gateway, "everything", front=front, mode="legacy", logging_callback=on_log) as client:
            await client.call_tool("toggle-simulated-logging", {})
            try:
                await got.wait()
            finally:
                await client.call_tool("toggle-simulated-logging", {})
    assert messages
    assert messages[0].level
