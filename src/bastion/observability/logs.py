"""Bastion's log lines: plain text, or one JSON object a line (`log_format: json`).

A JSON line carries `time` (RFC 3339, UTC), `level`, `logger`, `message`, `exception` when
there is one, and what `context()` gives for the line: the ids of the call being handled
(`call_id`, `agent`, `server`, `tool`) and the trace (`trace_id`, `span_id`) when tracing is on.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from bastion.observability.config import LogFormat

LogContext = Callable[[], Mapping[str, str]]
"""The ids to add to a line logged now (empty outside a call)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_NOISY = ("mcp", "httpx2", "uvicorn", "sse_starlette")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self, context: LogContext | None = None) -> None:
        super().__init__()
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if self.context is not None:
            try:
                for key, value in self.context().items():
                    line.setdefault(key, value)
            except Exception as exc:  # a log line is never lost to its context
                line["context_error"] = type(exc).__name__
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    level: int,
    log_format: LogFormat = "text",
    *,
    context: LogContext | None = None,
    quiet: tuple[str, ...] = _NOISY,
    stream: TextIO | None = None,
) -> None:
    """Send the root logger's records to `stream` (stderr) at `level`, as text or JSON lines.

    Called again (a config file asks for JSON after the command line was read), it replaces
    the earlier setup. The libraries in `quiet` log warnings only unless `level` is DEBUG.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter(context) if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING if level > logging.DEBUG else logging.NOTSET)
