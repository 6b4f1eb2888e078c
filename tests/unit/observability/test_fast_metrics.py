"""`FastHistogram` and `FastCounter` are scraped as `prometheus_client`'s `Histogram` and `Counter`: after the same
observations, the two registries' exposition texts are the same, byte for byte."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from bastion.observability.fast_metrics import FastCounter, FastHistogram
from bastion.observability.metrics import CALL_BUCKETS, GUARD_BUCKETS, WRITE_BUCKETS, GatewayMetrics

_ = GatewayMetrics  # importing `metrics` turns the `_created` series off, as a gateway runs

BUCKETS = st.sampled_from([GUARD_BUCKETS, CALL_BUCKETS, WRITE_BUCKETS, (0.5, 1.0, math.inf), (1.0,)])
AMOUNTS = st.floats(min_value=0, max_value=400, allow_nan=False) | st.sampled_from(
    [0.0, 0.00001, 0.001, 0.005, 1.0, 300.0, 1e9, math.inf, float("nan")]
)
LABELS = st.sampled_from(["policy", "pinning", "echo", 'with "quotes"', "tab\\n"])


@given(buckets=BUCKETS, observations=st.lists(st.tuples(LABELS, AMOUNTS), max_size=40))
def test_a_histogram_is_exposed_as_prometheus_clients(
    buckets: tuple[float, ...], observations: list[tuple[str, float]]
) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("x_seconds", "Help with \\ and\nnewline.", ["check"], buckets=buckets, registry=theirs)
    fast = FastHistogram("x_seconds", "Help with \\ and\nnewline.", ["check"], buckets=buckets, registry=ours)
    for label, amount in observations:
        reference.labels(label).observe(amount)
        fast.labels(label).observe(amount)

    assert generate_latest(ours) == generate_latest(theirs)


@given(observations=st.lists(AMOUNTS, max_size=20))
def test_an_unlabelled_histogram_is_exposed_as_prometheus_clients(observations: list[float]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("w_seconds", "Writes.", buckets=WRITE_BUCKETS, registry=theirs)
    fast = FastHistogram("w_seconds", "Writes.", buckets=WRITE_BUCKETS, registry=ours)
    for amount in observations:
        reference.observe(amount)
        fast.observe(amount)

    assert generate_latest(ours) == generate_latest(theirs)


@given(increments=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)), max_size=30))
def test_a_counter_is_exposed_as_prometheus_clients(increments: list[tuple[str, int]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("calls", "Calls.", ["server", "tool"], registry=theirs)
    fast = FastCounter("calls", "Calls.", ["server", "tool"], registry=ours)
    plain_reference = Counter("events", "Events.", registry=theirs)
    plain = FastCounter("events", "Events.", registry=ours)
    for label, amount in increments:
        reference.labels(label, "t").inc(amount)
        fast.labels(label, "t").inc(amount)
        plain_reference.inc()
        plain.inc()

    assert generate_latest(ours) == generate_latest(theirs)


def test_counts_are_not_lost_between_threads() -> None:
    registry = CollectorRegistry()
    histogram = FastHistogram("t_seconds", "Threads.", ["k"], buckets=(1.0,), registry=registry)
    counter = FastCounter("t", "Threads.", registry=registry)
    child = histogram.labels("k")

    def work() -> None:
        for _ in range(20_000):
            child.observe(0.5)
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    text = generate_latest(registry).decode()
    assert 't_seconds_count{k="k"} 80000.0' in text
    assert "t_total 80000.0" in text


def test_bad_use_is_refused_as_prometheus_client_refuses_it() -> None:
    registry = CollectorRegistry()
    counter = FastCounter("c", "C.", ["a"], registry=registry)
    with pytest.raises(ValueError, match="label values"):
        counter.labels("1", "2")
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("1").inc(-1)
    with pytest.raises(ValueError, match="increasing"):
        FastHistogram("h", "H.", buckets=(2.0, 1.0), registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        FastCounter("c", "Again.", registry=registry)
