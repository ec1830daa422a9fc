"""Stored rows sent to a running server's batch endpoint (POST /api/v1/analytics/events/batch).

`generate_events` uses it when the embedded data directory belongs to a running server: the
server is then the only process that may write, so the events go in the way clients send them.
"""

import http.client
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson

BATCH_PATH = "/api/v1/analytics/events/batch"
MAX_BATCH = 10_000  # the endpoint's limit


class ServerError(Exception):
    """The server could not be reached, or refused a batch."""


def _item(row: dict) -> dict:
    # The row's metadata is already JSON text: embedded as it is, not parsed and re-encoded.
    return {**row, "metadata": orjson.Fragment(row["metadata"])}


def batch_body(rows: list[dict]) -> bytes:
    """The JSON array the batch endpoint takes for stored-form rows (naive UTC datetimes)."""
    return orjson.dumps([_item(row) for row in rows], option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


class BatchClient:
    """One keep-alive connection to `url` (http://host:port), an optional API key."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 120.0):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ServerError(f"{url!r} is not an http://host:port address.")
        self.url = url
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Api-Key {api_key}"

    def post(self, rows: list[dict]) -> int:
        """Send rows (at most MAX_BATCH); the number the server accepted."""
        try:
            self.connection.request("POST", BATCH_PATH, body=batch_body(rows), headers=self.headers)
            response = self.connection.getresponse()
            body = response.read()
        except OSError as e:
            self.connection.close()
            raise ServerError(f"no answer from {self.url} ({e})") from None
        if response.status != 201:
            raise ServerError(f"{self.url}{BATCH_PATH} answered {response.status}: {_summary(body)}")
        return json.loads(body)["accepted"]

    def send(self, batches: Iterable[list[dict]], progress=None) -> int:
        """Send every row of `batches` in requests of at most MAX_BATCH; the total accepted."""
        accepted = 0
        for batch in batches:
            for start in range(0, len(batch), MAX_BATCH):
                chunk = batch[start:start + MAX_BATCH]
                accepted += self.post(chunk)
                if progress is not None:
                    progress(len(chunk))
        return accepted

    def close(self) -> None:
        self.connection.close()


def _summary(body: bytes) -> str:
    text = body.decode(errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(data, dict) and "detail" in data:
        return f"{data['detail']} ({data['cause']})" if "cause" in data else str(data["detail"])
    return text[:200]
