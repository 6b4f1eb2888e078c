"""JSON log lines: one object a line, the call's ids inside a call, text by default."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bastion.model import Principal
from bastion.observability.logs import configure_logging
from bastion.proxy.recording import CallState, call_log_context, current_call


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_call_ids(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(logging.INFO, "json", context=call_log_context, stream=out)
    log = logging.getLogger("bastion.test")
    log.info("outside %s", "a call")
    state = CallState("c0ffee", Principal(agent="ops", via="token", credential_id="t1"), None, server="db", tool="q")
    token = current_call.set(state)
    try:
        log.warning("inside")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        current_call.reset(token)
    outside, inside, failed = (json.loads(line) for line in out.getvalue().splitlines())
    assert outside["message"] == "outside a call"
    assert outside["level"] == "INFO"
    assert outside["logger"] == "bastion.test"
    assert outside["time"].endswith("+00:00")
    assert "call_id" not in outside
    assert inside["call_id"] == "c0ffee"
    assert (inside["agent"], inside["server"], inside["tool"]) == ("ops", "db", "q")
    assert "ValueError: boom" in failed["exception"]


def test_a_message_cannot_forge_fields_or_lines(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(logging.INFO, "json", stream=out)
    logging.getLogger("bastion.test").info('x"}\n{"level": "CRITICAL", "logger": "bastion.auth"}')
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["level"] == "INFO"


def test_a_failing_context_loses_no_line(restore_logging: None) -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("no")

    out = io.StringIO()
    configure_logging(logging.INFO, "json", context=broken, stream=out)
    logging.getLogger("bastion.test").info("kept")
    assert json.loads(out.getvalue())["message"] == "kept"


def test_text_is_the_default(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(logging.INFO, stream=out)
    logging.getLogger("bastion.test").info("plain")
    assert out.getvalue().rstrip().endswith("INFO bastion.test: plain")
