"""Reads: the analytics queries and the health probe."""

from django.db import DatabaseError, connections


def clickhouse_health():
    try:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        return True, "ok"
    except DatabaseError as e:
        return False, str(e).splitlines()[0][:200]
