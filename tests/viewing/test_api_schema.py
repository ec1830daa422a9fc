"""The OpenAPI schema and the API agree (schemathesis over every operation of /api/schema/).

Valid and invalid requests; no answer is a 5xx, and every status, content type and body is the
documented one. Bounded: a few dozen cases per operation.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


def operations(key):
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers={"Authorization": f"Api-Key {key}"}
    )
    return {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in schema.get_all_operations())}


# schemathesis's own pytest integration (schema.parametrize) does not run under pytest 9, so
# each operation's strategy is driven by hypothesis directly: same cases, same checks.
OPERATIONS = [
    "GET /health",
    "POST /api/v1/analytics/events",
    "POST /api/v1/analytics/events/batch",
    "GET /api/v1/analytics/content/popular",
    "GET /api/v1/analytics/user/{user_id}/stats",
    "GET /api/v1/analytics/trends",
    "GET /api/v1/analytics/peak-hours",
    "GET /api/v1/analytics/summary",
    "GET /api/v1/analytics/content/{movie_id}/retention",
    "GET /api/v1/analytics/concurrency",
    "GET /api/v1/analytics/realtime",
    "GET /api/v1/analytics/users/{user_id}/events",
    "GET /api/v1/analytics/events/export",
    "DELETE /api/v1/analytics/users/{user_id}",
]
# Endpoints whose 200 is a file, not JSON; fuzzed with a key that has their scope.
FILE_OPERATIONS = {"GET /api/v1/analytics/users/{user_id}/events": "export", "GET /api/v1/analytics/events/export": "export"}
# Operations of a scope the suite's ingest+read key lacks.
SCOPED_OPERATIONS = {**FILE_OPERATIONS, "DELETE /api/v1/analytics/users/{user_id}": "erase"}


def key_for(name, api_key):
    from analytics_site.access.models import ApiKey

    scope = SCOPED_OPERATIONS.get(name)
    return ApiKey.objects.create_key(name="fuzz", **{f"can_{scope}": True})[1] if scope else api_key


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, mode",
    # /health takes no input, so there is nothing negative to send it.
    [(name, mode) for name in OPERATIONS for mode in MODES if not (name == "GET /health" and mode.value == "negative")],
    ids=lambda value: getattr(value, "value", value),
)
def test_every_operation_answers_as_documented(ch, api_key, frozen_now, name, mode):
    api_key = key_for(name, api_key)
    operation = operations(api_key)[name]
    seen = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_as_documented(case):
        # With a valid key of the operation's scope, as a client would call it (401/403/429 are
        # documented too).
        response = case.call_and_validate(headers={"Authorization": f"Api-Key {api_key}"}, checks=CHECKS)
        seen.append(response.status_code)

    answers_as_documented()
    # The key got the requests past authentication: not every answer is a 401.
    assert seen and any(code != 401 for code in seen), seen


def test_every_operation_is_fuzzed(ch, api_key):
    assert sorted(operations(api_key)) == sorted(OPERATIONS)


def test_the_schema_documents_every_endpoint_with_examples(ch, client):
    doc = client.get("/api/schema/?format=json").json()
    paths = doc["paths"]
    assert set(paths) == {
        "/health",
        "/api/v1/analytics/events",
        "/api/v1/analytics/events/batch",
        "/api/v1/analytics/content/popular",
        "/api/v1/analytics/user/{user_id}/stats",
        "/api/v1/analytics/trends",
        "/api/v1/analytics/peak-hours",
        "/api/v1/analytics/summary",
        "/api/v1/analytics/content/{movie_id}/retention",
        "/api/v1/analytics/concurrency",
        "/api/v1/analytics/realtime",
        "/api/v1/analytics/users/{user_id}/events",
        "/api/v1/analytics/events/export",
        "/api/v1/analytics/users/{user_id}",
    }
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (path, method)
            for code, response in responses.items():
                if code == "200" and f"{method.upper()} {path}" in FILE_OPERATIONS:
                    assert "application/json" not in response["content"], (path, method)
                    assert all("schema" in c for c in response["content"].values()), (path, method)
                    continue
                content = response["content"]["application/json"]
                assert "schema" in content and "examples" in content, (path, method, code)
            if path.startswith("/api/"):
                assert {"400", "401", "403", "429", "503"} <= set(responses), (path, method)
                assert operation["security"] and {"ApiKeyAuth": []} in operation["security"], (path, method)
    components = doc["components"]["schemas"]
    assert {"PopularItem", "PopularContent", "TrendEntry", "Trends", "PeakHour", "PeakHours", "UserStats",
            "StoredEvent", "EventInputRequest", "BatchAccepted", "Error"} <= set(components)


ANALYTICS = ["/api/v1/analytics/content/popular", "/api/v1/analytics/user/{user_id}/stats",
             "/api/v1/analytics/trends", "/api/v1/analytics/peak-hours"]


@pytest.mark.parametrize("path", ANALYTICS)
def test_every_analytics_parameter_is_documented_with_an_example(ch, client, path):
    operation = client.get("/api/schema/?format=json").json()["paths"][path]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    expected = {"tz", "days", "from", "to", "format"} | ({"limit"} if "popular" in path else set())
    expected |= {"interval", "compare"} if path.endswith("trends") else set()
    expected |= {"user_id"} if "user_id" in path else set()
    assert set(parameters) == expected
    for name, parameter in parameters.items():
        assert parameter.get("description"), name
        if parameter["in"] == "query":
            assert "example" in parameter, name
    assert parameters["user_id" if "user_id" in path else "tz"]["in"] == ("path" if "user_id" in path else "query")
    ok = operation["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/csv"} and "examples" in ok["text/csv"]
    assert set(operation["responses"]["400"]["content"]) == {"application/json"}


def test_every_query_parameter_of_every_read_has_an_example(ch, client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    reads = [op for path, ops in paths.items() if path.startswith("/api/v1/analytics/") for m, op in ops.items()
             if m == "get" and "text/csv" in op["responses"]["200"]["content"] and "export" not in op["operationId"]]
    assert len(reads) >= 8  # popular, user stats, trends, peak hours and the engagement reads
    for operation in reads:
        for parameter in operation["parameters"]:
            if parameter["in"] == "query":
                assert "example" in parameter and parameter.get("description"), (operation["operationId"], parameter)


def test_the_batch_body_in_the_schema_is_the_validating_serializer(ch, client):
    from viewing.serializers import EventBatchSerializer

    doc = client.get("/api/schema/?format=json").json()
    body = doc["paths"]["/api/v1/analytics/events/batch"]["post"]["requestBody"]["content"]["application/json"]
    batch = EventBatchSerializer()
    assert body["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/EventInputRequest"},
        "minItems": batch.min_length,
        "maxItems": batch.max_length,
    }
    assert (batch.min_length, batch.max_length) == (1, 10_000)


@pytest.mark.parametrize("path, script", [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_the_docs_render_without_a_cdn(client, path, script):
    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "/api/schema/" in html and "cdn.jsdelivr" not in html
    src = next(part.split('"')[0] for part in html.split('src="')[1:] if script in part.split('"')[0])
    asset = client.get(src)
    assert asset.status_code == 200 and int(asset["Content-Length"]) > 100_000
