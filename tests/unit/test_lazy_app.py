"""`LazyApp`: the app is built by the first request, once, and a failed build is tried again."""

from __future__ import annotations

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from bastion.lazy_app import LazyApp


def page_app() -> ASGIApp:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the page")

    return Starlette(routes=[Route("/ui", page)])


def test_the_app_is_built_by_the_first_request_and_only_once() -> None:
    builds: list[int] = []

    def build() -> ASGIApp:
        builds.append(1)
        return page_app()

    lazy = LazyApp(build)
    assert builds == []
    assert not lazy.built
    client = TestClient(lazy)  # not entered: no lifespan events, as the gateway serves it
    assert client.get("/ui").text == "the page"
    assert client.get("/ui").text == "the page"
    assert builds == [1]
    assert lazy.built


@pytest.mark.anyio
async def test_concurrent_first_requests_build_it_once() -> None:
    builds: list[int] = []

    def build() -> ASGIApp:
        builds.append(1)
        return page_app()

    lazy = LazyApp(build)
    sent: list[int] = []

    async def request() -> None:
        scope = {"type": "http", "method": "GET", "path": "/ui", "headers": [], "query_string": b""}

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                sent.append(int(message["status"]))  # type: ignore[call-overload]

        await lazy(scope, receive, send)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(request)
    assert builds == [1]
    assert sent == [200] * 5


def test_a_failed_build_fails_that_request_and_is_tried_again() -> None:
    attempts: list[int] = []

    def build() -> ASGIApp:
        attempts.append(1)
        if len(attempts) == 1:
            raise ImportError("the dashboard's templates are missing")
        return page_app()

    lazy = LazyApp(build)
    client = TestClient(lazy)
    with pytest.raises(ImportError):  # nothing served: the server answers 500
        client.get("/ui")
    assert not lazy.built
    assert client.get("/ui").text == "the page"
    assert attempts == [1, 1]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_preloaded_modules_are_imported_before_the_build_and_a_missing_one_fails_the_request() -> None:
    missing = LazyApp(page_app, preload=["bastion_tests_no_such_module"])
    with pytest.raises(ModuleNotFoundError):
        TestClient(missing).get("/ui")
    assert not missing.built
    lazy = LazyApp(page_app, preload=["bastion.lazy_import"])
    assert TestClient(lazy).get("/ui").text == "the page"


def test_looking_into_it_builds_it() -> None:
    lazy = LazyApp(page_app, preload=["bastion.lazy_import"])
    assert isinstance(lazy.app, Starlette)
    assert lazy.built
    assert TestClient(lazy).get("/ui").text == "the page"
