"""The dashboard's engagement panels in headless Chromium: tiles, retention, concurrency and
"watching now" show what the API answers, a movie picked in the popular table gets its
curve, and "watching now" refreshes by itself."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User

from tests.browser.test_dashboard import (  # noqa: F401 (browser: the fixture)
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    browser,
    log_in,
    wait_for,
)
from viewing.services import events_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="headless Chromium not installed: apt-get install chromium chromium-driver",
    ),
]


def session_events(movie, user, start, positions, kinds=None):
    session = uuid.uuid4()
    kinds = kinds or ["start"] + ["progress"] * (len(positions) - 1)
    return [
        {"id": uuid.uuid4(), "user_id": user, "movie_id": movie, "event_type": kind, "position_seconds": position,
         "session_id": session, "metadata": "{}", "event_time": start + timedelta(minutes=5 * i)}
        for i, (kind, position) in enumerate(zip(kinds, positions, strict=True))
    ]


def seed(now):
    movies = [uuid.uuid4() for _ in range(3)]
    events = []
    for day in range(10):  # this week and the one before, so there is a change to show
        for i, movie in enumerate(movies):
            for k in range(3 - i):
                start = now - timedelta(days=day, hours=3 + k)
                events += session_events(movie, uuid.uuid4(), start, [60 * k, 300 + 60 * k, 600 + 600 * i],
                                         ["start", "progress", "finish"])
    live = session_events(movies[1], uuid.uuid4(), now - timedelta(minutes=10), [0, 300])
    events_store(events=events + live)
    return movies


def chart(driver, canvas):
    from selenium.webdriver.common.by import By

    return driver.execute_script(
        "const c = Chart.getChart(arguments[0]); return {labels: c.data.labels, data: c.data.datasets.map(d => d.data)};",
        driver.find_element(By.ID, canvas),
    )


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_engagement_panels_show_what_the_api_says(ch, browser, live_server, client):  # noqa: F811
    from selenium.webdriver.common.by import By

    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    seed(now)
    log_in(browser, live_server)
    client.force_login(User.objects.get(username="admin"))
    browser.get(live_server.url + "/dashboard/")
    loaded = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-engagement-loaded") or ""  # noqa: E731
    wait_for(browser, lambda d: loaded(d).startswith("7|UTC|") and not loaded(d).endswith("|"))
    browser.set_window_size(1280, 1500)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-engagement.png"))

    summary = client.get("/api/v1/analytics/summary?days=7&compare=previous_period").json()
    for field, tile in [("views", "tile-views"), ("watch_time_seconds", "tile-watch-time"),
                        ("avg_view_duration_seconds", "tile-avg-duration"), ("completion_rate", "tile-completion"),
                        ("peak_concurrent_views", "tile-peak"), ("unique_users", "tile-viewers")]:
        element = browser.find_element(By.ID, tile)
        assert float(element.get_attribute("data-value")) == summary[field], field
        change = element.find_element(By.CLASS_NAME, "change")
        expected = summary["change"][field]
        shown = change.get_attribute("data-value")
        assert (None if shown == "" else float(shown)) == expected, field
    assert browser.find_element(By.ID, "tile-views").find_element(By.CLASS_NAME, "value").text == f"{summary['views']:,}"
    assert summary["views"] > 0 and summary["change"]["views"] is not None

    # Retention: the first popular movie at first, then the one clicked.
    rows = browser.find_elements(By.CSS_SELECTOR, "#popular-table tbody tr")
    popular = client.get("/api/v1/analytics/content/popular?days=7&limit=10").json()["items"]
    first = popular[0]["movie_id"]
    curve = client.get(f"/api/v1/analytics/content/{first}/retention?days=7&bucket=60").json()["curve"]
    assert chart(browser, "retention-chart")["data"][0] == [p["percent"] for p in curve]
    second = popular[1]["movie_id"]
    rows[1].click()
    wait_for(browser, lambda d: d.find_element(By.ID, "retention-chart").get_attribute("data-movie") == second)
    curve = client.get(f"/api/v1/analytics/content/{second}/retention?days=7&bucket=60").json()["curve"]
    assert chart(browser, "retention-chart")["data"][0] == [p["percent"] for p in curve]

    concurrency = client.get("/api/v1/analytics/concurrency?days=7&interval=hour").json()["concurrency"]
    assert chart(browser, "concurrency-chart")["data"][0] == [e["peak_concurrent_views"] for e in concurrency]

    # A zone picked in the window form (the page's own picker, or one added here) redraws them.
    browser.execute_script("""
        const form = document.getElementById('window-form');
        let picker = form.querySelector('[name=tz]');
        if (!picker) {
            picker = document.createElement('select');
            picker.name = 'tz';
            picker.innerHTML = '<option>UTC</option><option>Asia/Kathmandu</option>';
            form.appendChild(picker);
        }
        if (![...picker.options].some(o => o.value === 'Asia/Kathmandu')) picker.add(new Option('Asia/Kathmandu'));
        picker.value = 'Asia/Kathmandu';
        picker.dispatchEvent(new Event('change', {bubbles: true}));
    """)
    wait_for(browser, lambda d: loaded(d).startswith("7|Asia/Kathmandu|"))
    local = client.get("/api/v1/analytics/summary?days=7&tz=Asia/Kathmandu&compare=previous_period").json()
    assert float(browser.find_element(By.ID, "tile-views").get_attribute("data-value")) == local["views"]
    concurrency = client.get("/api/v1/analytics/concurrency?days=7&interval=hour&tz=Asia/Kathmandu").json()
    assert chart(browser, "concurrency-chart")["data"][0] == [
        e["peak_concurrent_views"] for e in concurrency["concurrency"]]

    # Watching now refreshes by itself: a new view shows within one refresh.
    live = client.get("/api/v1/analytics/realtime?window=300").json()
    wait_for(browser, lambda d: d.find_element(By.ID, "now-live").text == f"{live['live_views']:,}")
    events_store(events=session_events(uuid.uuid4(), uuid.uuid4(), datetime.now(UTC).replace(tzinfo=None), [0]))
    wait_for(browser, lambda d: d.find_element(By.ID, "now-live").text == f"{live['live_views'] + 1:,}", timeout=12)
    browser.set_window_size(390, 844)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-engagement-phone.png"))
