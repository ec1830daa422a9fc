"""The retry delay (pure): doubling from the initial delay, bounded, reset by a success."""

from viewing.kafka.backoff import Backoff


def test_the_delay_doubles_up_to_the_maximum_and_a_success_resets_it():
    now = [0.0]
    backoff = Backoff(initial=0.5, maximum=3.0, clock=lambda: now[0])
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.failures == 5 and backoff.retry_at == 3.0 and not backoff.due()
    now[0] = 3.0
    assert backoff.due()
    backoff.reset()
    assert backoff.failures == 0 and backoff.retry_at is None and not backoff.due()
    assert backoff.failed() == 0.5
