"""In a real browser (headless Chromium driven by Selenium): an admin logs in, finds a user's
events in the admin, and reads the dashboard, whose numbers and charts must equal the API's.

Chromium comes from Debian (`chromium`, `chromium-driver`); `make test` installs it where
apt-get runs as root. Without it these tests skip and say so. Screenshots go to
test-artifacts/.
"""

import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from viewing.services import events_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="headless Chromium not installed: apt-get install chromium chromium-driver",
    ),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", f"--user-data-dir={profile}", "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, timeout=20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def seed_events():
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    user = uuid.uuid4()
    movies = [uuid.uuid4() for _ in range(3)]
    events = []
    for day in range(3):
        for i, movie in enumerate(movies):
            for kind in ["start"] * (3 - i) + ["finish"] * (2 - i if i < 2 else 0):
                events.append({
                    "id": uuid.uuid4(), "user_id": user if i == 0 else uuid.uuid4(), "movie_id": movie,
                    "event_type": kind, "position_seconds": 600, "session_id": None, "metadata": "{}",
                    "event_time": now - timedelta(days=day, hours=i),
                })
    events_store(events=events)
    return user


def log_in(browser, live_server):
    from selenium.webdriver.common.by import By

    User.objects.create_superuser("admin", "admin@example.com", "browser-pass")
    browser.get(live_server.url + "/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("browser-pass")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, lambda d: "/admin/" in d.current_url and "login" not in d.current_url)


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_admin_finds_a_users_events(ch, browser, live_server):
    from selenium.webdriver.common.by import By

    user = seed_events()
    log_in(browser, live_server)
    browser.get(f"{live_server.url}/admin/viewing/viewingevent/?q={user}")
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"))
    browser.save_screenshot(str(ARTIFACTS / "admin-search.png"))
    assert len(rows) == 3 * 5  # three days of 3 starts + 2 finishes of the first movie
    assert all(str(user) in row.text for row in rows)


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_dashboard_shows_what_the_api_says(ch, browser, live_server, client):
    from selenium.webdriver.common.by import By

    user = seed_events()
    log_in(browser, live_server)
    client.force_login(User.objects.get(username="admin"))
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    browser.get(live_server.url + "/dashboard/")
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "7|UTC|day|0")
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    trends = client.get("/api/v1/analytics/trends?days=7").json()["trends"]
    hours = client.get("/api/v1/analytics/peak-hours?days=7").json()
    popular = client.get("/api/v1/analytics/content/popular?days=7&limit=10").json()["items"]

    def text(element_id):
        return browser.find_element(By.ID, element_id).text

    assert text("total-events") == f"{sum(r['total_events'] for r in trends):,}"
    assert text("total-starts") == f"{sum(r['starts'] for r in trends):,}"
    assert text("total-finishes") == f"{sum(r['finishes'] for r in trends):,}"
    assert text("peak-hour") == f"{hours['peak_hour']:02d}:00"
    # The charts hold exactly the API's series.
    chart = lambda canvas: chart_data(browser, canvas)  # noqa: E731
    trend_chart = chart("trends-chart")
    assert trend_chart["labels"] == [r["date"] for r in trends]
    assert trend_chart["data"][0] == [r["starts"] for r in trends]
    assert chart("hours-chart")["data"][0] == [h["events_count"] for h in hours["peak_hours"]]
    rows = browser.find_elements(By.CSS_SELECTOR, "#popular-table tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [i["movie_id"] for i in popular]

    browser.find_element(By.ID, "user-id").send_keys(str(user))
    browser.find_element(By.CSS_SELECTOR, "#user-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "user-stats").get_attribute("data-user") == str(user))
    stats = client.get(f"/api/v1/analytics/user/{user}/stats?days=7&tz=UTC").json()
    shown = browser.find_element(By.ID, "user-stats").text
    assert f"Movies started\n{stats['movies_started']}" in shown
    assert f"Most watched\n{stats['most_watched_movie_id']}" in shown
    browser.set_window_size(390, 844)  # a phone
    browser.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))


def chart_data(browser, canvas):
    from selenium.webdriver.common.by import By

    return browser.execute_script(
        "const c = Chart.getChart(arguments[0]);"
        "return {labels: c.data.labels, data: c.data.datasets.map(d => d.data), names: c.data.datasets.map(d => d.label)};",
        browser.find_element(By.ID, canvas),
    )


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_dashboard_in_the_browsers_zone_shows_the_apis_numbers(ch, browser, live_server, client):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seed_events()
    log_in(browser, live_server)
    client.force_login(User.objects.get(username="admin"))
    # The browser lives in Kathmandu (+05:45): the picker starts there, and every chart is local.
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kathmandu"})
    browser.get(live_server.url + "/dashboard/")
    body = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")  # noqa: E731
    wait_for(browser, lambda d: body(d) == "7|Asia/Kathmandu|day|0")
    assert Select(browser.find_element(By.ID, "tz")).first_selected_option.text == "Asia/Kathmandu"

    Select(browser.find_element(By.ID, "days")).select_by_value("last-month")
    wait_for(browser, lambda d: body(d) == "last-month|Asia/Kathmandu|day|0")
    Select(browser.find_element(By.ID, "days")).select_by_value("30")
    wait_for(browser, lambda d: body(d) == "30|Asia/Kathmandu|day|0")
    Select(browser.find_element(By.ID, "interval")).select_by_value("week")
    wait_for(browser, lambda d: body(d) == "30|Asia/Kathmandu|week|0")
    browser.find_element(By.ID, "compare").click()
    wait_for(browser, lambda d: body(d) == "30|Asia/Kathmandu|week|1")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-kathmandu.png"))

    window = "days=30&tz=Asia/Kathmandu"
    trends = client.get(f"/api/v1/analytics/trends?{window}&interval=week&compare=previous_period").json()
    hours = client.get(f"/api/v1/analytics/peak-hours?{window}").json()
    shown = chart_data(browser, "trends-chart")
    assert shown["labels"] == [e["start"] for e in trends["trends"]]
    assert shown["data"][0] == [e["starts"] for e in trends["trends"]]
    assert shown["data"][2] == [e["total_events"] for e in trends["trends"]]
    assert shown["names"][3] == "Starts (previous)" and shown["data"][3] == [e["starts"] for e in trends["previous"]]
    assert chart_data(browser, "hours-chart")["data"][0] == [h["events_count"] for h in hours["peak_hours"]]
    assert browser.find_element(By.ID, "peak-hour").text == (
        "–" if hours["peak_hour"] is None else f"{hours['peak_hour']:02d}:00")
    assert sum(h["events_count"] for h in hours["peak_hours"]) > 0
    # Each chart's CSV link asks the API for the same window as CSV.
    link = browser.find_element(By.ID, "hours-csv").get_attribute("href")
    assert link.endswith(f"/api/v1/analytics/peak-hours?{window.replace('/', '%2F')}&format=csv")
    csv_answer = client.get(link.removeprefix(live_server.url))
    assert csv_answer.status_code == 200 and csv_answer["Content-Type"].startswith("text/csv")
    assert browser.find_element(By.ID, "trends-csv").get_attribute("href").endswith(
        "interval=week&compare=previous_period&format=csv")


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_dashboard_is_for_staff_only(ch, client):
    assert client.get("/dashboard/").status_code == 302


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_the_trend_chart_fits_the_window(ch, browser, live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seed_events()
    log_in(browser, live_server)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    browser.get(live_server.url + "/dashboard/")
    body = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")  # noqa: E731
    wait_for(browser, lambda d: body(d) == "7|UTC|day|0")
    Select(browser.find_element(By.ID, "interval")).select_by_value("hour")
    wait_for(browser, lambda d: body(d) == "7|UTC|hour|0")
    hour = browser.find_element(By.CSS_SELECTOR, '#interval option[value="hour"]')
    assert hour.is_enabled()
    # 90 dates by hour would be a 400 (at most 31 dates): the charts show days, the page no error.
    Select(browser.find_element(By.ID, "days")).select_by_value("90")
    wait_for(browser, lambda d: body(d) == "90|UTC|day|0")
    assert browser.find_element(By.ID, "status").text == ""
    assert not hour.is_enabled()
    assert len(chart_data(browser, "trends-chart")["labels"]) == 90
    # Back to a short window, hours can be chosen again.
    Select(browser.find_element(By.ID, "days")).select_by_value("30")
    wait_for(browser, lambda d: body(d) == "30|UTC|day|0")
    assert hour.is_enabled()
    chart_type = lambda: browser.execute_script(  # noqa: E731
        "return Chart.getChart(document.getElementById('trends-chart')).config.type;")
    assert chart_type() == "line"
    # Today by day is one bucket: bars, not a lone dot on the axis.
    Select(browser.find_element(By.ID, "days")).select_by_value("1")
    wait_for(browser, lambda d: body(d) == "1|UTC|day|0")
    assert chart_type() == "bar" and len(chart_data(browser, "trends-chart")["labels"]) == 1
