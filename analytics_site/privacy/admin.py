"""Erasures and lifted suppressions in the admin: a read-only audit trail (no adding, editing or
deleting)."""

from django.contrib import admin

from .models import ErasureRecord, SuppressionLift


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnly):
    list_display = ("erased_at", "user_id", "events_deleted", "requested_by", "seconds")
    list_filter = ("erased_at",)
    search_fields = ("=user_id", "=api_key_prefix", "requested_by")
    date_hierarchy = "erased_at"


@admin.register(SuppressionLift)
class SuppressionLiftAdmin(ReadOnly):
    list_display = ("lifted_at", "user_id", "was_suppressed", "requested_by", "reason")
    list_filter = ("lifted_at",)
    search_fields = ("=user_id", "reason")
    date_hierarchy = "lifted_at"
