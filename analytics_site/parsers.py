"""A JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE with 413.

DRF's JSONParser reads the request stream directly, which Django's own size check (on
`request.body`) never sees, so the limit is enforced here: by Content-Length up front, and by
reading at most one byte past the limit for bodies without one. JSON nested too deeply for
Python's parser is a 400 as well, not a 500.

The body stays Python's json to parse: orjson would be ~3x faster but accepts nesting up to
1,024 levels where json stops near Python's recursion limit, so a body nested 1,000 deep would
no longer be a "JSON parse error". The batch endpoint has a faster path of its own for the
common shape (viewing/batch_decode.py), through `parse_body`.
"""

import codecs
import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

from .exceptions import PayloadTooLarge


def decodes_as_utf8(parser_context: dict | None) -> bool:
    """Whether DRF would decode the body as UTF-8 (the request's charset, else the default)."""
    try:
        return codecs.lookup(get_encoding(parser_context or {})).name == "utf-8"
    except (LookupError, ParseError):
        return False  # DRF's parser words the error


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return self.parse_body(self.read_body(stream, parser_context), media_type, parser_context)

    def read_body(self, stream, parser_context) -> bytes:
        """The request body, or PayloadTooLarge when it is over the limit."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge()
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge()
        return body

    def parse_body(self, body: bytes, media_type=None, parser_context=None):
        """The JSON document of `body`, or ParseError."""
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # json raises it for deep nesting; DRF catches only ValueError
            raise ParseError("JSON parse error - nested too deeply.") from None
