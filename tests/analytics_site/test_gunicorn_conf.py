"""analytics_site/gunicorn_conf.py's worker hook: gunicorn's Date header, formatted once a second;
the garbage collector's thresholds."""

import email.utils
import gc
import time

from gunicorn import util

from analytics_site import gunicorn_conf


def test_the_worker_tunes_the_garbage_collector_and_freezes_its_start_up_heap():
    original, before = util.http_date, gc.get_threshold()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_threshold() == gunicorn_conf.WORKER_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        util.http_date = original
        gc.set_threshold(*before)
        gc.unfreeze()


def test_the_date_header_is_formatted_once_a_second_and_stays_right():
    original, thresholds = util.http_date, gc.get_threshold()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert util.http_date is not original
        before = int(time.time())
        first = util.http_date()
        after = int(time.time())
        # The right date: RFC 7231's format, this very second.
        assert first in {email.utils.formatdate(s, usegmt=True) for s in range(before, after + 1)}
        second, a, b = int(time.time()), util.http_date(), util.http_date()
        if int(time.time()) == second:
            assert a is b  # within a second: formatted once
        assert util.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"  # an explicit time is formatted as asked
        deadline = time.time() + 3
        while int(time.time()) == after and time.time() < deadline:
            time.sleep(0.05)  # into the next second, not data
        before = int(time.time())
        later = util.http_date()
        assert later != first
        assert later in {email.utils.formatdate(s, usegmt=True) for s in range(before, int(time.time()) + 1)}
    finally:
        util.http_date = original
        gc.set_threshold(*thresholds)
        gc.unfreeze()
