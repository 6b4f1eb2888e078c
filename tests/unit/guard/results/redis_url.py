"""The Redis the provenance tests remember in: 127.0.0.1:6379, started if it is down, the test
skipped loudly (with why) only if it cannot be started. Each test uses agents of its own, so
tests sharing that Redis never see each other's values."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

HOST, PORT = "127.0.0.1", 6379
URL = f"redis://{HOST}:{PORT}/0"


def _answers() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_url() -> str:
    """The URL of a running Redis, or a skip saying why there is none."""
    if _answers():
        return URL
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("SKIPPED LOUDLY: no Redis on 127.0.0.1:6379 and redis-server is not installed")
    args = [server, "--daemonize", "yes", "--bind", HOST, "--port", str(PORT), "--save", "", "--appendonly", "no"]
    subprocess.run(args, check=False, capture_output=True, timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # `--daemonize` returns before it listens: wait for it to answer
        if _answers():
            return URL
    pytest.skip("SKIPPED LOUDLY: Redis on 127.0.0.1:6379 is down and could not be started")
