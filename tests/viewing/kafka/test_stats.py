"""Consumer stats (pure): messages per second over the last minute, and the snapshot."""

import pytest

from viewing.kafka.stats import ConsumerStats, RateMeter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_rate_is_the_average_over_the_window_and_falls_to_zero_when_idle():
    clock = Clock()
    meter = RateMeter(window=60, clock=clock)
    assert meter.rate() == 0.0
    for _ in range(30):  # 100 messages a second for 30 s
        clock.now += 1
        meter.add(100)
    assert meter.rate() == pytest.approx(100.0)
    clock.now += 30  # then nothing for 30 s: 3,000 in the last minute
    assert meter.rate() == pytest.approx(50.0)
    clock.now += 31
    assert meter.rate() == 0.0
    assert meter.total == 3000


def test_a_burst_within_a_second_counts():
    clock = Clock()
    meter = RateMeter(window=60, clock=clock)
    clock.now += 0.2
    meter.add(500)
    clock.now += 0.3
    meter.add(500)
    assert meter.rate() == pytest.approx(1000.0)  # over at least one second


def test_samples_stay_bounded():
    clock = Clock()
    meter = RateMeter(window=60, clock=clock)
    for _ in range(10000):
        clock.now += 0.5
        meter.add(1)
    assert len(meter._samples) <= 62


def test_the_snapshot_names_partitions_and_keeps_the_last_flush():
    stats = ConsumerStats("g")
    stats.read(10, buffered=10)
    stats.flush_failed("Table event_ids does not exist", {("a", 0): 10})
    assert stats.snapshot()["state"] == "retrying" and stats.snapshot()["lag"] == {"a[0]": 10}
    stats.flushed(rows=8, new=7, dead_letters=2, seconds=0.01234, buffered=0, lag={("a", 0): 0, ("a", 1): 3})
    snapshot = stats.snapshot()
    assert snapshot["state"] == "running"
    assert (snapshot["stored"], snapshot["duplicates"], snapshot["dead_lettered"]) == (7, 1, 2)
    assert snapshot["lag"] == {"a[0]": 0, "a[1]": 3} and snapshot["total_lag"] == 3
    assert snapshot["last_flush"]["rows"] == 8 and snapshot["last_flush"]["seconds"] == 0.012
    assert snapshot["last_flush"]["at"].endswith("+00:00")
