"""The staff dashboard page (/dashboard/): charts drawn in the browser from the public API;
and the front page (/), which leads staff to it and everyone else to the API docs."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render


@staff_member_required
def dashboard(request):
    return render(request, "viewing/dashboard.html")


def home(request):
    """/ (where the admin's "View site" points): the dashboard for staff, else /docs."""
    user = request.user
    return redirect("dashboard" if user.is_active and user.is_staff else "swagger-ui")
