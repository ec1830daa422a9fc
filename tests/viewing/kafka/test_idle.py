"""The idle clock of --exit-on-idle (pure)."""

from viewing.kafka.idle import IdleClock


def test_idle_only_with_nothing_buffered_and_with_a_grace_before_the_first_assignment():
    now = [0.0]
    idle = IdleClock(join_grace_s=6, clock=lambda: now[0])
    now[0] = 5
    assert not idle.expired(2, buffered=0)  # still joining: 2 + 6 s
    now[0] = 8
    assert idle.expired(2, buffered=0)
    idle.assigned()
    now[0] = 9.9
    assert not idle.expired(2, buffered=0)
    now[0] = 10
    assert idle.expired(2, buffered=0)
    assert not idle.expired(2, buffered=1)  # not idle until everything is stored
    idle.revoked()  # a rebalance: the grace again
    now[0] = 14
    assert not idle.expired(2, buffered=0)
