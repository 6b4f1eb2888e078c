"""The cycle collector, paused while a `bastion` command starts (`pause`, by `program.py`).

Starting a command builds a few hundred thousand long-lived objects (modules, models,
compiled patterns, the policy catalogue) and next to no garbage. With the collector on, that
growth sets off about 120 collections that find nothing, a tenth to a fifth of the CPU
`bastion wrap` spends before it answers `initialize`. So the program entry point pauses the
collector before anything is imported, and `resume` turns it on again once the command's code
and state are built: for most commands as they start (`main`'s group callback), for `up` and
`wrap` once the gateway is running, before it serves. What was built is frozen first
(`gc.freeze`): the collections of a long-running gateway then never walk it again.

Only the program pauses it: importing `bastion.cli.main` (tests, `CliRunner`, an embedding
program) leaves the collector as it is, and `resume` is then a no-op.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

_paused = False
"""The collector was on, and `pause` turned it off."""


def pause() -> None:
    """Turn the collector off, if it is on (`resume` turns it on again)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """The collector on again, what exists now frozen, if `pause` turned it off (else nothing)."""
    global _paused
    if not _paused:
        return
    _paused = False
    gc.freeze()
    gc.enable()
    if logger.isEnabledFor(logging.DEBUG):  # counting them walks every one
        logger.debug("cycle collector on: %d objects built while starting are left out of its collections",
                     gc.get_freeze_count())  # fmt: skip
