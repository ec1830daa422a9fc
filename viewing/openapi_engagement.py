"""The OpenAPI description of the engagement endpoints (summary, retention, concurrency,
realtime): one `openapi.analytics(...)` decorator each, as for the other analytics reads."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from .openapi import FIELD_ERRORS_SCHEMA, MOVIE, analytics

WINDOW = {"from": "2026-11-24", "to": "2026-11-30", "tz": "UTC", "period_days": 7}
SUMMARY = {
    **WINDOW, "starts": 10, "finishes": 7, "total_events": 40, "unique_users": 9, "unique_movies": 5,
    "views": 12, "watch_time_seconds": 36000, "avg_view_duration_seconds": 3000.0, "completion_rate": 70.0,
    "peak_concurrent_views": 4,
}

summary = analytics(
    operation_id="summary",
    summary="Headline numbers of the window: events, views, watch time, completion, peak concurrency",
    description="A view is the events of one (session_id, movie_id) pair inside the window (a view the "
    "window's edge cuts counts only its events inside); events without a session count in the event "
    "counters only. With compare=previous_period: `previous` (the same numbers for the window of as many "
    "dates ending the date before `from`) and `change` (% per metric, null when the previous value is 0).",
    example=SUMMARY,
)

content_retention = analytics(
    operation_id="content_retention",
    summary="Audience retention curve of one movie",
    description="At each multiple of `bucket` from 0 up to the highest position of the movie's views, the "
    "views whose lowest ≤ position ≤ highest position, and their share of all the movie's views. No views: "
    "views 0 and an empty curve.",
    path_parameters=[
        OpenApiParameter("movie_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The movie's UUID.")
    ],
    bad_request=OpenApiResponse(
        FIELD_ERRORS_SCHEMA,
        description="movie_id is not a UUID, a parameter is malformed or out of range, or the curve would "
        "have more than 2,000 points (the body names bucket).",
        examples=[
            OpenApiExample("bad movie id", {"movie_id": ["Must be a valid UUID."]}),
            OpenApiExample("curve too long", {"bucket": ["The curve would have 2161 points (positions up to 21600 s); "
                                                         "at most 2000: use a bucket of at least 11 seconds."]}),
        ],
    ),
    example={
        "movie_id": MOVIE, **WINDOW, "views": 120, "bucket_seconds": 60, "avg_view_duration_seconds": 2710.5,
        "curve": [{"position": 0, "viewers": 118, "percent": 98.33}, {"position": 60, "viewers": 117, "percent": 97.5}],
    },
)

concurrency = analytics(
    operation_id="concurrency",
    summary="Peak concurrent views per local date or local hour",
    description="Views are formed over the whole window; each entry has the most views live at one instant "
    "of its bucket (a view is live from its first to its last event, both included) and the earliest "
    "such instant in UTC, null when 0.",
    example={
        "from": "2026-11-30", "to": "2026-11-30", "tz": "Asia/Kathmandu", "period_days": 1, "interval": "hour",
        "concurrency": [{"start": "2026-11-30T00:00:00+05:45", "peak_concurrent_views": 3,
                         "peak_at": "2026-11-29T18:20:05Z"}],
    },
)

realtime = analytics(
    operation_id="realtime",
    summary="Who is watching now",
    description="The events of the last `window` seconds form views; a view is live when none of its events "
    "is a finish. An event counts within a second of the 201 that stored it; no tz, no dates.",
    example={
        "as_of": "2026-11-30T18:42:07Z", "window_seconds": 300, "live_views": 3, "viewers": 2,
        "top_movies": [{"movie_id": MOVIE, "live_views": 2}],
    },
)
