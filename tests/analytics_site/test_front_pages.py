"""The pages a person opens: / leads somewhere, /docs/ and /redoc/ answer like /docs and
/redoc, and the documentation pages load nothing from outside the service."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

# Hosts a page would load fonts, scripts or badges from if it were not self-contained.
EXTERNAL_LOADS = re.compile(
    r"fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.|validator\.swagger\.io/validator\?"
)


@pytest.fixture
def staff_client(db):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def test_home_sends_staff_to_the_dashboard_and_everyone_else_to_the_docs(db, staff_client):
    assert Client().get("/")["Location"] == "/docs"
    assert staff_client.get("/")["Location"] == "/dashboard/"
    plain = User.objects.create_user("viewer", password="pw")
    client = Client()
    client.force_login(plain)
    assert client.get("/")["Location"] == "/docs"


@pytest.mark.parametrize("slash, bare", [("/docs/", "/docs"), ("/redoc/", "/redoc")])
def test_the_docs_answer_with_a_trailing_slash(staff_client, slash, bare):
    response = staff_client.get(slash, follow=True)
    assert response.redirect_chain == [(bare, 302)]
    assert response.status_code == 200
    assert response.templates[0].name == staff_client.get(bare).templates[0].name  # the same page
    assert staff_client.get(slash + "?x=1")["Location"] == bare + "?x=1"


def asset_urls(html):
    return re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_outside(staff_client, path):
    html = staff_client.get(path).content.decode()
    # No absolute URL at all in the page: every script, style, icon and the schema are ours.
    assert re.findall(r"https?://", html) == [], html
    assets = asset_urls(html)
    assert assets and all(url.startswith("/") for url in assets), assets
    for url in assets:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert not EXTERNAL_LOADS.search(body.decode(errors="replace")), url
        assert not re.search(r"url\(\s*['\"]?https?://", body.decode(errors="replace")), url  # css


def test_the_checks_see_an_external_load():
    """What ReDoc's own template carries, and Swagger UI's default badge, are caught."""
    redoc = '<link rel="stylesheet" href="https://fonts.googleapis.com/css2?family=Montserrat">'
    assert EXTERNAL_LOADS.search(redoc) and re.findall(r"https?://", redoc)
    assert EXTERNAL_LOADS.search("https://validator.swagger.io/validator?url=x")


def test_swagger_ui_asks_no_validator(staff_client):
    html = staff_client.get("/docs").content.decode()
    assert '"validatorUrl": null' in html


def test_redoc_keeps_the_browser_on_the_service(staff_client):
    """ReDoc's bundle shows a logo from cdn.redoc.ly: the page's policy allows no other host
    (the browser test sees that nothing leaves, tests/browser/test_front_pages.py)."""
    html = staff_client.get("/redoc").content.decode()
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1)
    sources = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert sources["default-src"] == ["'self'"]
    allowed = {"'self'", "'unsafe-inline'", "'unsafe-eval'", "data:", "blob:"}
    assert all(set(values) <= allowed for values in sources.values()), sources
