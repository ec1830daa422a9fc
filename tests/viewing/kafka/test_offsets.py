"""The offset ledger (pure): lag from the next offset to store, commits retried after a failure."""

from kafka import TopicPartition

from viewing.kafka.offsets import OffsetLedger, commit_map


def test_lag_counts_from_the_first_offset_read_until_something_is_stored():
    ledger = OffsetLedger()
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    high = {a0: 100, a1: 50, b0: None}
    ledger.seen("a", 0, 40)
    ledger.seen("a", 0, 60)  # only the first offset a run sees counts
    ledger.seen("b", 0, 0)
    assert ledger.lag([a0, a1, b0], high.get) == {("a", 0): 60}  # a1 not read, b0 no watermark yet
    ledger.stored({("a", 0): 90})
    assert ledger.lag([a0], high.get) == {("a", 0): 10}
    ledger.stored({("a", 0): 120})  # a watermark from an older fetch: never negative
    assert ledger.lag([a0], high.get) == {("a", 0): 0}


def test_offsets_whose_commit_failed_go_with_the_next_commit():
    ledger = OffsetLedger()
    ledger.commit_failed(ledger.to_commit({("a", 0): 10, ("a", 1): 5}))
    assert ledger.to_commit({("a", 0): 20}) == {("a", 0): 20, ("a", 1): 5}
    ledger.committed([("a", 0), ("a", 1)])
    assert ledger.to_commit({}) == {}


def test_an_assignment_forgets_partitions_no_longer_owned():
    ledger = OffsetLedger()
    ledger.seen("a", 0, 1)
    ledger.seen("a", 1, 1)
    ledger.keep_only({TopicPartition("a", 1)})
    assert ledger.stored_next == {("a", 1): 1}


def test_commit_map_is_kafka_pythons_form():
    (tp, meta), = commit_map({("a", 3): 17}).items()
    assert tp == TopicPartition("a", 3) and meta.offset == 17
