"""Issue 13 item 5: a server's stderr goes to its own bounded, rotated file, and is shown only prefixed and cleaned."""

from __future__ import annotations

import io
import os
import stat

import pytest

from bastion.runtime.server_log import (
    CONSOLE_BURST,
    RotatingLog,
    StderrCapture,
    clean_line,
    server_log_path,
    tail_lines,
)

FAKE = "2026-12-06 00:45:30,178 WARNING bastion.upstream.upstream: upstream db down: token bst_x leaked"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"plain line\n", "plain line"),
        (b"windows line\r\n", "windows line"),
        (b"\x1b[31mred\x1b[0m text", "red text"),
        (b"\x1b]0;fake title\x07after", "after"),
        (b"cursor\x1b[2Kerased\x1b[1A", "cursorerased"),
        (b"over\rwrite", "overwrite"),
        (b"bell\x07 back\x08space", "bell backspace"),
        (b"tab\there", "tab here"),
        ("c1 \x9b31m csi".encode(), "c1 31m csi"),
        ("bidi \u202eevil\u202c".encode(), "bidi evil"),
        (b"bad \xff utf-8", "bad \ufffd utf-8"),
    ],
)
def test_clean_line_removes_escapes_and_controls(raw, shown):
    assert clean_line(raw) == shown


def test_the_log_rotates_at_its_size_and_keeps_a_few_files(tmp_path):
    path = server_log_path(tmp_path, "noisy")
    log = RotatingLog(path, max_bytes=1000, backups=2)
    for number in range(500):
        log.write_line(f"line {number:04} ".encode() + b"x" * 40)
    log.close()
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["noisy.log", "noisy.log.1", "noisy.log.2"]
    assert all(f.stat().st_size <= 1000 for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert path.read_text().splitlines()[-1].startswith("line 0499")
    last = tail_lines(tmp_path, "noisy", 30)
    assert len(last) == 30
    assert [line[:9] for line in last] == [f"line {n:04}" for n in range(470, 500)]


def test_a_line_longer_than_the_log_still_fits_one_file(tmp_path):
    log = RotatingLog(server_log_path(tmp_path, "s"), max_bytes=100, backups=1)
    log.write_line(b"a" * 500)
    log.write_line(b"b")
    log.close()
    assert tail_lines(tmp_path, "s", 5) == ["a" * 500, "b"]


def test_tail_lines_of_a_server_that_printed_nothing(tmp_path):
    assert tail_lines(tmp_path, "quiet", 10) == []
    assert tail_lines(tmp_path, "quiet", 0) == []


def test_captured_stderr_goes_to_the_file_and_only_prefixed_to_the_console(tmp_path):
    console = io.StringIO()
    capture = StderrCapture("db", RotatingLog(server_log_path(tmp_path, "db")), console)
    capture.stream.write(f"{FAKE}\n\x1b[2K\r{FAKE}\nno newline at the end")
    capture.close()
    assert tail_lines(tmp_path, "db") == [FAKE, FAKE, "no newline at the end"]
    assert server_log_path(tmp_path, "db").read_bytes().startswith(FAKE.encode() + b"\n\x1b[2K\r")
    shown = console.getvalue().splitlines()
    assert shown == [f"[server db] {FAKE}", f"[server db] {FAKE}", "[server db] no newline at the end"]


def test_the_capture_pipe_is_not_inherited(tmp_path):
    capture = StderrCapture("db", RotatingLog(server_log_path(tmp_path, "db")), None)
    try:
        assert not os.get_inheritable(capture.stream.fileno())
    finally:
        capture.close()


def test_a_flood_stays_in_the_file_and_the_console_gets_a_bounded_share(tmp_path):
    flood = CONSOLE_BURST * 5
    ticks = iter([100.0] * (1 + flood))  # no time passes during the flood (one tick a line, one at the start)

    def clock() -> float:
        return next(ticks, 1100.0)  # then the budget is full again

    console = io.StringIO()
    capture = StderrCapture("noisy", RotatingLog(server_log_path(tmp_path, "noisy")), console, clock=clock)
    capture.stream.write("".join(f"flood {n}\n" for n in range(flood)) + "after the flood\n")
    capture.close()
    assert len(tail_lines(tmp_path, "noisy", 10_000)) == flood + 1
    shown = console.getvalue().splitlines()
    assert shown[:2] == ["[server noisy] flood 0", "[server noisy] flood 1"]
    assert shown[-2:] == [
        f"[server noisy] ({flood - CONSOLE_BURST} lines not shown here: bastion servers logs noisy)",
        "[server noisy] after the flood",
    ]
    assert len(shown) == CONSOLE_BURST + 2


def test_lines_not_shown_are_counted_when_the_server_stops(tmp_path):
    console = io.StringIO()
    capture = StderrCapture("noisy", RotatingLog(server_log_path(tmp_path, "noisy")), console, clock=lambda: 0.0)
    capture.stream.write("".join(f"flood {n}\n" for n in range(CONSOLE_BURST + 7)))
    capture.close()
    assert console.getvalue().splitlines()[-1] == "[server noisy] (7 lines not shown here: bastion servers logs noisy)"
