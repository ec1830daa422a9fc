"""Routes the viewing app to the `clickhouse` database and everything else to `default`."""

CLICKHOUSE_APPS = {"viewing"}


class ClickHouseRouter:
    def _db(self, model):
        return "clickhouse" if model._meta.app_label in CLICKHOUSE_APPS else None

    def db_for_read(self, model, **hints):
        return self._db(model)

    def db_for_write(self, model, **hints):
        return self._db(model)

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, **hints):
        if app_label in CLICKHOUSE_APPS:
            return db == "clickhouse"
        return db == "default"
