"""Lifting a suppression made by mistake (manage.py lift_suppression): the viewer's events from
then on are stored again over HTTP, what was erased stays erased, every lift is recorded and
listed read-only in the admin."""

import io
import json
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from analytics_site.privacy.models import SuppressionLift
from tests.conftest import query


def post_event(client, user_id):
    body = {"user_id": str(user_id), "movie_id": str(uuid.uuid4()), "event_type": "start"}
    response = client.post("/api/v1/analytics/events", body, content_type="application/json")
    assert response.status_code == 201
    return response


def stored_of(user_id):
    return query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": user_id})[0][0]


def lift(user_id, reason="erased the wrong viewer (ticket 42)"):
    out = io.StringIO()
    call_command("lift_suppression", str(user_id), "--reason", reason, stdout=out)
    return json.loads(out.getvalue())


def test_a_lifted_viewers_new_events_are_stored_and_the_erased_ones_stay_erased(ch, client):
    user = uuid.uuid4()
    post_event(client, user)
    call_command("erase_user", str(user), stdout=io.StringIO())
    post_event(client, user)
    assert stored_of(user) == 0  # suppressed: acknowledged, not stored
    assert lift(user) == {"user_id": str(user), "was_suppressed": True}
    post_event(client, user)
    assert stored_of(user) == 1  # the new one only
    (record,) = SuppressionLift.objects.all()
    assert (record.user_id, record.requested_by, record.reason, record.was_suppressed) == (
        user, "manage.py lift_suppression", "erased the wrong viewer (ticket 42)", True)
    # Lifting again changes nothing and says so; it is recorded too.
    assert lift(user, "checked twice") == {"user_id": str(user), "was_suppressed": False}
    assert list(SuppressionLift.objects.values_list("was_suppressed", flat=True)) == [False, True]
    # Erasing again suppresses again.
    call_command("erase_user", str(user), stdout=io.StringIO())
    post_event(client, user)
    assert stored_of(user) == 0


def test_other_viewers_stay_suppressed(ch, client):
    kept, lifted = uuid.uuid4(), uuid.uuid4()
    for user in (kept, lifted):
        call_command("erase_user", str(user), stdout=io.StringIO())
    lift(lifted)
    for user in (kept, lifted):
        post_event(client, user)
    assert (stored_of(kept), stored_of(lifted)) == (0, 1)


def test_bad_arguments_are_refused_and_not_recorded(ch):
    with pytest.raises(CommandError, match="Not a UUID"):
        call_command("lift_suppression", "nope", "--reason", "x")
    with pytest.raises(CommandError, match="--reason"):
        call_command("lift_suppression", str(uuid.uuid4()), "--reason", "  ")
    with pytest.raises(CommandError, match="--reason"):
        call_command("lift_suppression", str(uuid.uuid4()))
    assert SuppressionLift.objects.count() == 0


def test_the_admin_lists_lifts_read_only(ch):
    user = uuid.uuid4()
    lift(user)
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    listing = admin.get("/admin/privacy/suppressionlift/")
    assert listing.status_code == 200 and str(user) in listing.content.decode()
    record = SuppressionLift.objects.get()
    assert admin.get("/admin/privacy/suppressionlift/add/").status_code == 403
    assert admin.post(f"/admin/privacy/suppressionlift/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin.get(f"/admin/privacy/suppressionlift/{record.pk}/change/")
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split("<form")[-1]
