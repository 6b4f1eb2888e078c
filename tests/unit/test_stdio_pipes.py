"""`bastion wrap`'s loop-driven stdin/stdout: lines of any length, stray output kept off the wire."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from bastion.stdio_pipes import PipeLineReader, PipeTextWriter

pytestmark = pytest.mark.anyio

CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from bastion.stdio_pipes import loop_driven_stdio

    async def main():
        async with loop_driven_stdio() as (stdin, stdout):
            print("stray", stdin is not None, flush=True)  # fd 1 now points at stderr
            os.write(1, b"stray bytes\\n")
            if stdin is None:
                return
            async for line in stdin:
                await stdout.write(f"{len(line)}:{line[:3]}\\n")
                await stdout.flush()
        print("restored", flush=True)  # fd 1 is the wire again

    asyncio.run(main())
    """
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_a_child_on_pipes_reads_and_writes_through_the_loop_and_keeps_stray_output_off_the_wire() -> None:
    long_line = "x" * (3 << 20)  # longer than the stream buffer
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=f"héllo\n{long_line}\nlast without newline",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["6:hél", f"{len(long_line) + 1}:xxx", "20:las", "restored"]
    assert "stray True" in done.stderr
    assert "stray bytes" in done.stderr


def test_a_child_on_a_file_gets_the_sdk_default(tmp_path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hello\n", encoding="utf-8")
    with source.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", CHILD], stdin=stdin, capture_output=True, text=True, timeout=60, check=False
        )

    assert done.returncode == 0, done.stderr
    assert "stray False" in done.stdout  # (None, None): nothing was diverted


async def test_reader_and_writer_over_a_pipe() -> None:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    reader = asyncio.StreamReader(limit=16)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", buffering=0)
    )
    writer = PipeTextWriter(asyncio.StreamWriter(write_transport, protocol, None, loop))
    try:
        await writer.write("a line much longer than sixteen bytes\nbad \xff\n")
        await writer.flush()
        write_transport.close()

        lines = [line async for line in PipeLineReader(reader)]
    finally:
        read_transport.close()

    assert lines == ["a line much longer than sixteen bytes\n", "bad \xff\n"]
