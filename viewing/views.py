"""HTTP endpoints."""

from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors


class HealthApi(APIView):
    def get(self, request):
        ok, detail = selectors.clickhouse_health()
        body = {"status": "healthy" if ok else "unhealthy", "clickhouse": "ok" if ok else detail}
        return Response(body, status=200 if ok else 503)
