"""The staff dashboard page (/dashboard/): charts drawn in the browser from the public API."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render


@staff_member_required
def dashboard(request):
    return render(request, "viewing/dashboard.html")
