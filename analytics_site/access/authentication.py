"""Who is calling: an API key (`Authorization: Api-Key <key>` or `X-API-Key: <key>`), else
a logged-in staff session (the dashboard), else nobody."""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .key_cache import api_key_checked
from .models import ApiKey

KEYWORD = "Api-Key"
# What create_key makes: an 8-character prefix, a dot, 32 characters. Anything else is
# refused before the database sees it (NUL bytes, megabyte headers, ...).
KEY_FORMAT = re.compile(r"[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}")


def key_from_request(request):
    """The key the request carries, None when it carries none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    keyword, _, value = header.partition(" ")
    if keyword.lower() == KEYWORD.lower():
        return value.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """request.auth is the ApiKey. A key that is malformed, unknown, revoked or expired is a
    401 whatever else the request carries: a client with a wrong key learns it at once."""

    def authenticate(self, request):
        key = key_from_request(request)
        if key is None:
            return None
        if not KEY_FORMAT.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        try:
            api_key = api_key_checked(key)
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        return (None, api_key)

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate), not 403, when credentials are missing.
        return KEYWORD


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>` (or the header `X-API-Key: <key>`). Create a key with "
            "`python manage.py create_api_key --name NAME --scope ingest --scope read`.",
        }
