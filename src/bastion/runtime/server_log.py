"""Each server's stderr, kept in its own bounded, rotated file under `data_dir`.

A server's stderr is a pipe Bastion reads, never Bastion's own stderr: what a server prints
cannot pose as a Bastion log line. Every line goes to `data_dir/logs/servers/NAME.log`
(0600; at `MAX_BYTES` it rotates to `NAME.log.1` ... `NAME.log.BACKUPS`, the oldest dropped)
and is echoed on Bastion's console as `[server NAME] line`, control characters and ANSI
escapes removed, at most `CONSOLE_BURST` lines at once and `CONSOLE_RATE` a second (a
flood stays in the file). `bastion servers logs NAME` reads the file back; `tail_lines` does the
same for code that wants a server's last words (why its sandbox failed, say).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

__all__ = [
    "BACKUPS",
    "MAX_BYTES",
    "RotatingLog",
    "StderrCapture",
    "clean_line",
    "server_log_path",
    "tail_lines",
]

MAX_BYTES = 1 << 20
"""The size at which a server's log file rotates."""

BACKUPS = 3
"""How many rotated files are kept (`NAME.log.1` is the newest)."""

MAX_LINE = 16 << 10
"""A longer line is cut into pieces of this many bytes (each written as its own line)."""

CONSOLE_LINE = 500
"""Characters of a server line echoed on the console (the file keeps it whole)."""

CONSOLE_BURST = 100
CONSOLE_RATE = 20.0
"""Lines a server may put on the console at once, and per second after that (the file keeps them all)."""

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and any other two-byte escape.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def server_log_path(data_dir: Path, name: str) -> Path:
    """Where server `name`'s stderr is kept."""
    return data_dir / "logs" / "servers" / f"{name}.log"


def clean_line(raw: bytes | str) -> str:
    """A server's line, safe to show: decoded, ANSI escapes and control characters removed, tabs as spaces."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = _ANSI.sub("", text.rstrip("\r\n")).replace("\t", " ")
    return _CONTROL.sub("", text)


class RotatingLog:
    """An append-only file of lines that rotates at `max_bytes`, keeping `backups` older files. Thread-safe."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._size = 0

    def write_line(self, line: bytes) -> None:
        """Append one line (a newline is added); rotate first if it would not fit."""
        data = line.rstrip(b"\r\n") + b"\n"
        with self._lock:
            if self._file is None:
                self._open()
            elif self._size + len(data) > self.max_bytes and self._size > 0:
                self._rotate()
            assert self._file is not None
            self._file.write(data)
            self._size += len(data)

    def flush(self) -> None:
        """Write out what `write_line` buffered."""
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(self.path, flags, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "ab")
        self._size = os.fstat(fd).st_size

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        for number in range(self.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(_backup(self.path, number), _backup(self.path, number + 1))
        if self.backups > 0:
            os.replace(self.path, _backup(self.path, 1))
        else:
            self.path.unlink(missing_ok=True)
        self._open()


def _backup(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


class StderrCapture:
    """The stderr of one server's processes: a pipe, read by a thread into its log and the console.

    `stream` is the write end, handed to each start of the server as its stderr; Bastion
    keeps it open for as long as the server is configured (every restart shares it).
    """

    def __init__(
        self, name: str, log: RotatingLog, console: TextIO | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.log = log
        self._console = console
        self._clock = clock
        self._budget = float(CONSOLE_BURST)
        self._refilled = clock()
        self._not_shown = 0
        read_end, write_end = os.pipe()  # both close-on-exec: only a child's fd 2 is a copy
        self._reader = os.fdopen(read_end, "rb", buffering=0)
        self.stream: TextIO = os.fdopen(write_end, "w", encoding="utf-8")
        self._thread = threading.Thread(target=self._pump, name=f"stderr-{name}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop taking lines: close the write end and wait (bounded) for what is left to be read."""
        self.stream.close()
        self._thread.join(timeout)
        self.log.close()

    def _pump(self) -> None:
        pending = b""
        try:
            while chunk := self._reader.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                while len(pending) > MAX_LINE:
                    lines.append(pending[:MAX_LINE])
                    pending = pending[MAX_LINE:]
                self._lines(lines)
            if pending:
                self._lines([pending])
        finally:
            self._reader.close()
            if self._not_shown:
                self._echo([self._not_shown_note()])

    def _not_shown_note(self) -> str:
        note = f"({self._not_shown} lines not shown here: bastion servers logs {self.name})"
        self._not_shown = 0
        return note

    def _lines(self, lines: list[bytes]) -> None:
        # A full disk must not stop the server's stderr being drained (the server would block).
        with contextlib.suppress(OSError):
            for line in lines:
                self.log.write_line(line)
            self.log.flush()
        if self._console is None:
            return
        shown: list[str] = []
        for line in lines:
            if not self._may_show():
                self._not_shown += 1
                continue
            if self._not_shown:
                shown.append(self._not_shown_note())
            shown.append(clean_line(line)[:CONSOLE_LINE])
        self._echo(shown)

    def _echo(self, texts: list[str]) -> None:
        if self._console is None or not texts:
            return
        with contextlib.suppress(OSError, ValueError):
            self._console.write("".join(f"[server {self.name}] {text}\n" for text in texts))
            self._console.flush()

    def _may_show(self) -> bool:
        """Take one line from the console budget (refilled at `CONSOLE_RATE` a second, up to `CONSOLE_BURST`)."""
        now = self._clock()
        self._budget = min(CONSOLE_BURST, self._budget + (now - self._refilled) * CONSOLE_RATE)
        self._refilled = now
        if self._budget < 1:
            return False
        self._budget -= 1
        return True


def tail_lines(data_dir: Path, name: str, count: int = 20, upto: int | None = None) -> list[str]:
    """The last `count` lines server `name` printed on stderr (oldest first, cleaned for display).

    Reads the current log and, when it holds fewer lines, the rotated ones before it.
    Empty when the server has printed nothing (or has no log yet). `upto` reads only that
    many bytes of the current log (a follower prints the rest).
    """
    if count <= 0:
        return []
    path = server_log_path(data_dir, name)
    collected: list[str] = []
    for candidate in [path, *(_backup(path, n) for n in range(1, BACKUPS + 1))]:
        if len(collected) >= count:
            break
        try:
            with candidate.open("rb") as file:
                data = file.read(upto if candidate == path and upto is not None else -1)
        except OSError:
            continue
        collected = [clean_line(line) for line in data.removesuffix(b"\n").split(b"\n") if data] + collected
    return collected[-count:]
