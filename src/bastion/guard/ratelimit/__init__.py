"""Rate limits, concurrency caps and size caps (the `limits:` section; docs/limits.md).

`RateLimitCheck` is the first check of the guard pipeline; `usage.snapshot` reports each
counter's use against its limit (for `bastion limits` and the admin API).
"""

from bastion.guard.ratelimit.check import CHECK_NAME, RateLimitCheck
from bastion.guard.ratelimit.config import LimitsConfig, ToolLimitConfig
from bastion.guard.ratelimit.counters import Counters, CountersUnavailable
from bastion.guard.ratelimit.reporting import LimitReporter

__all__ = [
    "CHECK_NAME",
    "Counters",
    "CountersUnavailable",
    "LimitReporter",
    "LimitsConfig",
    "RateLimitCheck",
    "ToolLimitConfig",
]
