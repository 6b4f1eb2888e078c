"""Counters and histograms for what every tool call updates: one lock and one `bisect` per observation.

`prometheus_client`'s `Histogram.observe` runs a few Python calls, a loop over the buckets and two
locked increments per observation, and a gateway makes seven of them on each tool call (six guard
checks, the call's duration). These keep, per labelled child, a list of per-bucket counts and a
sum behind one lock, and are scraped as `prometheus_client`'s own families (`HistogramMetricFamily`,
`CounterMetricFamily`), so the exposition is the same text: `tests/unit/observability/test_fast_metrics.py`
compares both after the same observations.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["FastCounter", "FastHistogram"]

C = TypeVar("C")


class HistogramChild:
    """One label set's buckets: `counts[i]` observations of at most `bounds[i]`, the last one for `+Inf`."""

    __slots__ = ("_bounds", "_counts", "_lock", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, amount: float) -> None:
        """Count `amount` in the first bucket whose bound it does not exceed (a NaN only in the sum, as
        `prometheus_client` does)."""
        index = bisect_left(self._bounds, amount) if amount == amount else -1
        with self._lock:
            if index >= 0:
                self._counts[index] += 1
            self._sum += amount

    def snapshot(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self._counts), self._sum


class CounterChild:
    """One label set's count."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        with self._lock:
            self._value += amount

    def get(self) -> float:
        with self._lock:
            return self._value


class _Labelled(Generic[C]):
    """A metric's name, help and label names, and its children by label values."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], child: Callable[[], C]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._child = child
        self._children: dict[tuple[str, ...], C] = {}
        if not self.labelnames:
            self._children[()] = child()

    def labels(self, *values: object) -> C:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected, got {len(values)}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, self._child())
        return child

    def _items(self) -> list[tuple[tuple[str, ...], C]]:
        with self._lock:
            return list(self._children.items())


class FastHistogram(_Labelled[HistogramChild], Collector):
    """A histogram with `prometheus_client.Histogram`'s name, help, labels, buckets and exposition."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        if list(bounds) != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be in increasing order")
        finite = bounds[:-1] if bounds and bounds[-1] == math.inf else bounds
        self._bounds = finite
        super().__init__(name, documentation, labelnames, lambda: HistogramChild(finite))
        registry.register(self)

    def observe(self, amount: float) -> None:
        """For a histogram without labels."""
        self.labels().observe(amount)

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._items():
            counts, total = child.snapshot()
            cumulative, buckets = 0, []
            for bound, count in zip((*self._bounds, math.inf), counts, strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            family.add_metric(list(values), buckets, total)
        yield family


class FastCounter(_Labelled[CounterChild], Collector):
    """A counter with `prometheus_client.Counter`'s name (`_total` added on exposition), help, labels and text."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: CollectorRegistry
    ) -> None:
        super().__init__(name.removesuffix("_total"), documentation, labelnames, CounterChild)
        registry.register(self)

    def inc(self, amount: float = 1.0) -> None:
        """For a counter without labels."""
        self._children[()].inc(amount)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._items():
            family.add_metric(list(values), child.get())
        yield family
