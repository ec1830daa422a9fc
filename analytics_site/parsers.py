"""A JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE with 413.

DRF's JSONParser reads the request stream directly, which Django's own size check (on
`request.body`) never sees, so the limit is enforced here: by Content-Length up front, and by
reading at most one byte past the limit for bodies without one. JSON nested too deeply for
Python's parser is a 400 as well, not a 500.
"""

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .exceptions import PayloadTooLarge


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
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
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:  # json raises it for deep nesting; DRF catches only ValueError
            raise ParseError("JSON parse error - nested too deeply.") from None
