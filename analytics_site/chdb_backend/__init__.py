"""Django database backend: django-clickhouse-backend on the embedded engine (chdb)."""
