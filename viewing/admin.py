"""Django admin for viewing events: read-only browsing that stays fast at tens of millions.

ClickHouse is append-only (its deletes and updates are asynchronous mutations), so the admin
never adds, changes or deletes. Searching takes an exact UUID and filters the one column it
belongs to, so the bloom-filter index of that column (or the sort key) skips the rest of the
table; counting stops at a cap instead of scanning every row for each page.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils.functional import cached_property

from . import selectors
from .events import parse_uuid
from .models import ViewingEvent

COUNT_CAP = 10_000
SEARCH_COLUMNS = ("user_id", "movie_id", "session_id")


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows (SELECT count() over a LIMITed subquery); one row more
    tells whether there are more, so the page says "10,000+" rather than a wrong total."""

    @cached_property
    def counted(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, COUNT_CAP)

    @property
    def count_text(self) -> str:
        """The count as the change list shows it: "10,000+" at the cap."""
        return f"{COUNT_CAP:,}+" if self.counted > COUNT_CAP else f"{self.count:,}"


@admin.register(ViewingEvent)
class ViewingEventAdmin(admin.ModelAdmin):
    list_display = ("event_time", "event_type", "user_id", "movie_id", "position_seconds", "session_id")
    list_filter = ("event_type", ("event_time", admin.DateFieldListFilter))
    date_hierarchy = "event_time"
    search_fields = ("user_id",)  # shows the search box; get_search_results does the work
    search_help_text = "An exact UUID: user, movie, session or event id."
    ordering = ("-event_time",)
    list_per_page = 100
    show_full_result_count = False
    paginator = CappedCountPaginator
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            value = parse_uuid(term)
        except ValueError:
            self.message_user(request, "Search takes an exact UUID.", level="warning")
            return queryset.none(), False
        # One filter per column that holds the value: an OR across columns would keep
        # ClickHouse from skipping granules with any single column's index.
        matches = Q()
        for column in SEARCH_COLUMNS:
            if queryset.filter(**{column: value}).exists():
                matches |= Q(**{column: value})
        event_time = selectors.event_time_of(event_id=value)
        if event_time is not None:
            matches |= Q(id=value, event_time=event_time)
        return (queryset.filter(matches) if matches else queryset.none()), False
