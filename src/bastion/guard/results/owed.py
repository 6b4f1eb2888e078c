"""`Owed`: notes a memory owes, settled on the event loop's next turn or before it is next read.

The provenance and requested-action checks note every call's argument values as the agent's
own. Finding those values (URLs, addresses, accounts, dates, amounts) is most of what the checks
cost a call that they cannot hold: one whose memory has nothing a value could match, or a tool
that is no sink. Such a note changes no verdict of the call that makes it, only what later
results and calls are judged against; so it can wait until the call is on its way to the
server, while the event loop would otherwise idle. It must not wait longer: every later read
or write of the memory (this call's result remembered, another call judged) sees it first.

A memory in this process keeps what it owes here and settles it (`settle`) at the top of each
of its methods; the event loop settles it on its next turn at the latest. Notes are settled in
the order they were owed. One that fails is logged: a value not noted as the agent's own only
makes a later hold likelier, as when noting it failed before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Owed:
    """Notes owed by one memory (see the module docstring)."""

    __slots__ = ("_notes",)

    def __init__(self) -> None:
        self._notes: list[Callable[[], None]] = []

    def __bool__(self) -> bool:
        return bool(self._notes)

    def owe(self, note: Callable[[], None]) -> bool:
        """Owe `note`; False (nothing owed) outside an event loop, where nothing would settle it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._notes.append(note)
        if len(self._notes) == 1:
            loop.call_soon(self.settle)
        return True

    def settle(self) -> None:
        """Make every note owed, oldest first."""
        while self._notes:
            notes, self._notes = self._notes, []
            for note in notes:
                try:
                    note()
                except Exception:
                    logger.exception("a note of the agent's own argument values failed")
