"""The sandbox's own error message, read from what it printed on stderr before the server spoke.

When bubblewrap cannot set up the sandbox or exec the command (`bwrap: execvp /tmp/x/srv:
No such file or directory`), it says so on stderr and exits; the client only sees the pipe
close. `StderrTail` sits between the sandbox and the real stderr target: a thread copies
everything through, and keeps the `bwrap:` lines printed until the server has answered its
handshake (`spoke()`); after that nothing is kept, so a running server cannot dictate the
reason recorded for its own exit. `cause()` is then the sandbox's message, quoted as is.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import threading
from typing import TextIO

__all__ = ["StderrTail"]

_KEEP = 4096
"""Bytes of early stderr kept to find the sandbox's message in."""

_CAUSE_LIMIT = 500
_DRAIN_TIMEOUT = 2.0
"""How long `cause()` waits for the exited sandbox's last bytes (they are already in the pipe)."""


class StderrTail:
    """A pipe to hand a sandbox as its stderr; copies to `target`, remembers bubblewrap's own lines."""

    def __init__(self, target: TextIO) -> None:
        read_fd, write_fd = os.pipe()
        os.set_inheritable(read_fd, False)
        self.writer: TextIO = os.fdopen(write_fd, "w", encoding="utf-8", errors="replace")
        """Give this to the process as its stderr; `started()` closes Bastion's copy."""
        self._target = target
        self._early = bytearray()
        self._listening = True
        self._thread = threading.Thread(target=self._copy, args=(read_fd,), name="sandbox-stderr", daemon=True)
        self._thread.start()

    def started(self) -> None:
        """The process holds its own copy now: close ours, so the pipe ends when the sandbox does."""
        with contextlib.suppress(OSError):
            self.writer.close()

    def spoke(self) -> None:
        """The server answered: what it prints from now on is its own, not the sandbox's."""
        self._listening = False

    def cause(self) -> str | None:
        """Bubblewrap's own error lines (`bwrap: ...`), once the sandbox has exited; None if it printed none."""
        self.started()
        self._thread.join(_DRAIN_TIMEOUT)
        text = bytes(self._early).decode("utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.startswith("bwrap: ")]
        if not lines:
            return None
        cause = "; ".join(dict.fromkeys(lines))
        cause = "".join(ch if ch.isprintable() else "?" for ch in cause)
        return cause if len(cause) <= _CAUSE_LIMIT else cause[: _CAUSE_LIMIT - 3] + "..."

    def _copy(self, read_fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                if self._listening and len(self._early) < _KEEP:
                    self._early += chunk[: _KEEP - len(self._early)]
                with contextlib.suppress(OSError, ValueError):
                    self._target.write(decoder.decode(chunk))
                    self._target.flush()
