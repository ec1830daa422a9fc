"""API keys in the admin: create (the key is shown once, in a message), scope, revoke."""

from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from .models import ApiKey

# The package's own unscoped key model grants nothing here; only ApiKey is listed.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    list_display = (
        "prefix", "name", "can_ingest", "can_read", "can_erase", "can_export",
        "created", "expiry_date", "_has_expired", "revoked",
    )
    list_filter = ("can_ingest", "can_read", "can_erase", "can_export", "revoked", "created")
    fields = ("prefix", "name", "can_ingest", "can_read", "can_erase", "can_export", "expiry_date", "revoked")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.revoked:
            fields = fields + ("can_ingest", "can_read", "can_erase", "can_export")
        return fields
