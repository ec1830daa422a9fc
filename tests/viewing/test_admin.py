"""The Django admin on ClickHouse events: read-only, exact-UUID search, capped counting."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from viewing import admin as viewing_admin
from viewing.services import events_store

CHANGELIST = "/admin/viewing/viewingevent/"


def event(**fields):
    row = {
        "id": uuid.uuid4(), "user_id": uuid.uuid4(), "movie_id": uuid.uuid4(), "event_type": "start",
        "position_seconds": 0, "event_time": datetime(2026, 11, 27, 12), "session_id": None, "metadata": "{}",
    }
    row.update(fields)
    return row


@pytest.fixture
def admin_client(ch, client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_changelist_lists_events_newest_first(admin_client):
    old, new = event(event_time=datetime(2026, 11, 1)), event(event_time=datetime(2026, 11, 27))
    events_store(events=[old, new])
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index(str(new["user_id"])) < text.index(str(old["user_id"]))


@pytest.mark.parametrize("column", ["user_id", "movie_id", "session_id", "id"])
def test_search_by_exact_uuid_in_each_column(admin_client, column):
    target = event(session_id=uuid.uuid4())
    others = [event(session_id=uuid.uuid4()) for _ in range(5)]
    events_store(events=[target, *others])
    page = admin_client.get(CHANGELIST, {"q": str(target[column]).upper()})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert list(page.context["cl"].result_list)[0].id == target["id"]


def test_search_with_a_non_uuid_finds_nothing_and_says_why(admin_client):
    events_store(events=[event()])
    page = admin_client.get(CHANGELIST, {"q": "alice"}, follow=True)
    assert page.context["cl"].result_count == 0
    assert "exact UUID" in page.content.decode()


def test_filters_by_type_and_date(admin_client):
    events_store(events=[event(event_type="start"), event(event_type="finish"),
                         event(event_type="finish", event_time=datetime(2026, 10, 1))])
    assert admin_client.get(CHANGELIST, {"event_type": "finish"}).context["cl"].result_count == 2
    day = {"event_time__gte": "2026-11-27 00:00:00+00:00", "event_time__lt": "2026-11-28 00:00:00+00:00"}
    assert admin_client.get(CHANGELIST, day).context["cl"].result_count == 2


def test_read_only_every_write_is_forbidden(admin_client):
    e = event()
    events_store(events=[e])
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    assert admin_client.post(CHANGELIST + "add/", {}).status_code == 403
    change = f"{CHANGELIST}{e['id']}/change/"
    assert admin_client.get(change).status_code == 200  # a read-only view
    assert admin_client.post(change, {"event_type": "finish"}).status_code == 403
    assert admin_client.post(f"{CHANGELIST}{e['id']}/delete/", {"post": "yes"}).status_code == 403
    assert 'name="action"' not in admin_client.get(CHANGELIST).content.decode()  # no delete action


def test_counting_stops_at_the_cap(admin_client, monkeypatch):
    monkeypatch.setattr(viewing_admin, "COUNT_CAP", 5)
    base = datetime(2026, 11, 27)
    movie = uuid.uuid4()
    events_store(events=[event(movie_id=movie, event_time=base + timedelta(seconds=i)) for i in range(12)])
    response = admin_client.get(CHANGELIST)
    assert response.context["cl"].result_count == 5
    # The page says there are more, not a total of 5; under the cap the count is exact.
    page = response.content.decode()
    assert "5+ viewing events" in page and "5 viewing events" not in page
    assert "5+ results" in admin_client.get(CHANGELIST, {"q": str(movie)}).content.decode()
    unknown = admin_client.get(CHANGELIST, {"q": str(uuid.uuid4())}).content.decode()
    assert "0 results" in unknown and "0 viewing events" in unknown
    monkeypatch.setattr(viewing_admin, "COUNT_CAP", 12)
    assert "12 viewing events" in admin_client.get(CHANGELIST).content.decode()
    monkeypatch.setattr(viewing_admin, "COUNT_CAP", 11)
    assert "11+ viewing events" in admin_client.get(CHANGELIST).content.decode()


def test_anonymous_users_are_sent_to_login(ch, client):
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_createsuperuser_then_log_in(ch, client, monkeypatch):
    from django.core.management import call_command

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")
    call_command("createsuperuser", interactive=False, username="ops", email="ops@example.com", verbosity=0)
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "s3cret-pass"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get(CHANGELIST).status_code == 200
