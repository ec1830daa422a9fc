"""In headless Chromium: /docs and /redoc render and request nothing outside the service
(every request the browser makes is recorded), and the dashboard words a bad parameter as a
sentence, not raw JSON."""

import json
import shutil
import tempfile
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User

from tests.browser.test_dashboard import CHROMEDRIVER, CHROMIUM, log_in, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="headless Chromium not installed: apt-get install chromium chromium-driver",
    ),
]


@pytest.fixture
def recording_browser():
    """Chromium with its performance log on: every network request it makes is readable."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver):
    """The URLs the page requested, except those the browser blocked before sending them
    (the page's Content-Security-Policy)."""
    sent, blocked = {}, set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return [url for request_id, url in sent.items() if request_id not in blocked]


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
@pytest.mark.parametrize("path, rendered", [
    ("/docs", "document.querySelector('.swagger-ui .info .title')"),
    ("/redoc", "document.querySelector('.api-info h1, [role=main] h1')"),
])
def test_the_docs_pages_request_nothing_outside_the_service(ch, recording_browser, live_server, path, rendered):
    log_in(recording_browser, live_server)  # DEBUG is off in the suite: the docs are for staff
    recording_browser.get_log("performance")  # forget the log-in's requests
    recording_browser.get(live_server.url + path)
    wait_for(recording_browser, lambda d: d.execute_script(f"return {rendered} !== null"))
    urls = requested_urls(recording_browser)
    ours = urlsplit(live_server.url).netloc
    assert urls and all(urlsplit(u).scheme in ("data", "blob") or urlsplit(u).netloc == ours for u in urls), urls
    assert any(u.endswith("/api/schema/") or "/api/schema/?" in u for u in urls), urls


@pytest.mark.django_db(transaction=True, databases=["default", "clickhouse"])
def test_the_dashboard_says_a_malformed_user_id_in_a_sentence(ch, recording_browser, live_server):
    from selenium.webdriver.common.by import By

    log_in(recording_browser, live_server)
    assert User.objects.filter(is_staff=True).exists()
    recording_browser.get(live_server.url + "/dashboard/")
    recording_browser.find_element(By.ID, "user-id").send_keys("not-a-user")
    recording_browser.find_element(By.CSS_SELECTOR, "#user-form button").click()
    error = wait_for(recording_browser, lambda d: d.find_element(By.CSS_SELECTOR, "#user-stats .error").text)
    assert error == "User id: Must be a valid UUID.", error
