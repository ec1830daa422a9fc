"""Log formatting: JSON lines (LOG_FORMAT=json, one object per record, extra fields
included) and a filter that keeps expected client errors to one line."""

import json
import logging
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class WithoutTraceback(logging.Filter):
    """Drops the traceback of a record: for Django's reports of a refused request (a Host not
    in ALLOWED_HOSTS, a suspicious request), where the one line says it all and the request
    log has the status."""

    def filter(self, record):
        record.exc_info = None
        record.exc_text = None
        return True
