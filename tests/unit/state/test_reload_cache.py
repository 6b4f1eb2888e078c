"""`ReloadCache`: a copy asked for within its check interval is not checked, unless rechecked."""

from __future__ import annotations

from bastion.state.reload_cache import ReloadCache


class Table:
    def __init__(self) -> None:
        self.version = 1
        self.loads = 0
        self.asked = 0

    def load(self) -> int:
        self.loads += 1
        return self.version

    def current(self) -> int:
        self.asked += 1
        return self.version


def test_within_the_interval_the_copy_is_used_and_a_recheck_asks_at_once() -> None:
    table = Table()
    cache = ReloadCache(table.load, table.current, empty=0, check_interval=0.5)
    assert cache.get(100.0) == 1
    table.version = 2  # another process's commit
    assert cache.get(100.1) == 1  # within the interval: not asked
    assert table.asked == 1
    assert cache.recheck(100.1) == 2  # asked now, and reloaded
    assert (table.asked, table.loads) == (2, 2)
    assert cache.recheck(100.2) == 2  # asked, unchanged: not reloaded
    assert (table.asked, table.loads) == (3, 2)
    assert cache.get(100.3) == 2  # the recheck counts as a check: within the interval again
    assert table.asked == 3
