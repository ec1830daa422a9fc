"""The batcher: size and age triggers and the offsets a batch covers (pure, no broker)."""

import pytest

from viewing.kafka.batcher import Batcher, DeadLetter


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_full_batch_is_due_at_once():
    batcher = Batcher(size=3, interval=60, clock=Clock())
    for offset in range(2):
        batcher.add({"n": offset}, topic="a", partition=0, offset=offset)
    assert not batcher.due() and batcher.room() == 1
    batcher.add({"n": 2}, topic="a", partition=0, offset=2)
    assert batcher.due() and batcher.full and batcher.room() == 0


def test_rows_added_at_once_count_as_messages_and_cover_the_last_offset():
    batcher = Batcher(size=3, interval=60, clock=Clock())
    batcher.add_rows([{"n": 0}, {"n": 1}], topic="a", partition=5, offset=11, size=70)
    assert len(batcher) == 2 and batcher.room() == 1 and not batcher.due()
    batcher.add_rows([{"n": 2}], topic="a", partition=5, offset=12, size=30)
    batch = batcher.take()
    assert batch.rows == [{"n": 0}, {"n": 1}, {"n": 2}] and batch.offsets == {("a", 5): 13} and batch.bytes == 100


def test_a_batch_of_large_messages_is_full_at_its_byte_bound_dead_letters_included():
    batcher = Batcher(size=1000, interval=60, max_bytes=1000, clock=Clock())
    batcher.add({}, topic="a", partition=0, offset=0, size=600)
    assert not batcher.full and batcher.room() == 999
    batcher.add_dead_letter(DeadLetter("a", 0, 1, 0, None, b"x" * 400, {"f": ["bad"]}))
    assert batcher.full and batcher.due() and batcher.room() == 0
    assert batcher.take().bytes == 1000 and not batcher.full


def test_a_partial_batch_is_due_after_the_interval_from_its_first_message():
    clock = Clock()
    batcher = Batcher(size=100, interval=1.0, clock=clock)
    assert not batcher.due() and batcher.time_left() is None
    batcher.add({}, topic="a", partition=0, offset=0)
    clock.now += 0.6
    batcher.add({}, topic="a", partition=0, offset=1)
    assert not batcher.due()
    assert batcher.time_left() == pytest.approx(0.4)
    clock.now += 0.4
    assert batcher.due()


def test_offsets_to_commit_are_the_last_offset_plus_one_per_partition_dead_letters_included():
    batcher = Batcher(size=100, interval=1, clock=Clock())
    batcher.add({}, topic="a", partition=0, offset=5)
    batcher.add({}, topic="a", partition=0, offset=6)
    batcher.add({}, topic="a", partition=1, offset=0)
    batcher.add_dead_letter(DeadLetter("b", 3, 41, 0, None, b"x", {"f": ["bad"]}))
    batch = batcher.take()
    assert batch.offsets == {("a", 0): 7, ("a", 1): 1, ("b", 3): 42}
    assert len(batch.rows) == 3 and len(batch.dead_letters) == 1 and len(batch) == 4
    assert len(batcher) == 0 and batcher.take().offsets == {}


def test_clear_forgets_the_batch():
    batcher = Batcher(size=10, interval=1, clock=Clock())
    batcher.add({}, topic="a", partition=0, offset=0)
    batcher.clear()
    assert len(batcher) == 0 and not batcher.due()


def test_nonsense_sizes_are_refused():
    with pytest.raises(ValueError):
        Batcher(size=0, interval=1)
    with pytest.raises(ValueError):
        Batcher(size=10, interval=1, max_bytes=0)
    with pytest.raises(ValueError):
        Batcher(size=10, interval=0)
