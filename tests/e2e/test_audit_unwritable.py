"""A store made really unwritable (immutable files, no fault injection) refuses calls, and recovers by itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.e2e.clients import connect
from tests.e2e.conftest import SERVERS_DIR, start_gateway, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    """Make `paths` immutable (`chattr +i`): every write to them fails, even as root. Undone on exit."""
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True, capture_output=True)


def chattr_works(folder: Path) -> bool:
    probe = folder / "probe"
    probe.write_text("x")
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False)
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=False)
    return done.returncode == 0


async def test_unwritable_store_refuses_calls_then_recovers(tmp_path):
    if not chattr_works(tmp_path):
        pytest.skip("SKIPPED: chattr +i is not available here (needs root and a filesystem that supports it)")
    scratch = tmp_path / "scratch"  # the sandboxed server writes its notes here, and nowhere else
    scratch.mkdir()
    crashy = {"command": sys.executable, "args": [str(SERVERS_DIR / "crashy_server.py")]}
    servers = {"crashy": {**crashy, "sandbox": {"writable": [str(scratch)]}}}
    gateway = start_gateway(write_config(tmp_path, servers))
    notes = scratch / "reached-upstream.txt"
    db = gateway.data_dir / "audit.db"
    try:
        with anyio.fail_after(90):
            async with connect(gateway, "crashy") as client, httpx2.AsyncClient(timeout=10) as http:
                await client.call_tool("note", {"path": str(notes), "text": "before"})
                with immutable([db, db.with_name("audit.db-wal")]):
                    with pytest.raises(Exception, match="audit log cannot be written"):
                        await client.call_tool("note", {"path": str(notes), "text": "while-unwritable"})
                    ready = (await http.get(f"{gateway.base_url}/readyz", headers=gateway.status_headers())).json()
                    assert ready["audit_store"] == "failing"
                after = f"after-{uuid.uuid4().hex[:6]}"
                result = await client.call_tool("note", {"path": str(notes), "text": after})
                assert not result.is_error
                ready = (await http.get(f"{gateway.base_url}/readyz", headers=gateway.status_headers())).json()
                assert ready["audit_store"] == "writable"
    finally:
        gateway.stop()

    assert notes.read_text().split() == ["before", after], "the refused call never reached the upstream"
    recorded = [
        e["arguments"]["text"] for e in gateway.audit_events() if e["type"] == "call.requested" and e["tool"] == "note"
    ]
    assert recorded == ["before", after]
    done = gateway.cli("audit", "verify")
    assert done.returncode == 0, done.stderr
