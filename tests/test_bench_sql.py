"""The benchmark's raw-table versions of popular, user stats, trends and peak hours give the
service's answers in UTC and in Asia/Kathmandu (otherwise the comparison in
docs/performance.md would compare different work)."""

import random
from datetime import timedelta

import pytest

from bench.sql import analytics_sql
from tests.conftest import query
from tests.generator import events_generate, payload
from tests.viewing.test_api_reference import post_batch
from viewing.windows import Window


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu", "America/New_York"])
def test_raw_versions_answer_the_same(ch, client, frozen_now, tz):
    events = events_generate(seed=21, count=600, now=frozen_now.replace(tzinfo=None), days_back=8)
    rng = random.Random(2)
    post_batch(client, [payload(e, rng) for e in events])
    today = frozen_now.date()
    window = Window(today - timedelta(days=6), today, tz)
    users = sorted({str(e.user_id) for e in events})[:3]
    for name, (service, raw, params) in analytics_sql(window, users).items():
        for i in range(len(users)):
            answer = query(service, params(i))
            assert answer == query(raw, params(i)), (name, tz)
            assert answer and answer != [(0, 0, 0, 0, None)], name
