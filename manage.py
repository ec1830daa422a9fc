#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    from django.core.management import execute_from_command_line

    from analytics_site.chdb_backend.engine import EngineLocked

    try:
        execute_from_command_line(sys.argv)
    except Exception as e:
        # A locked embedded data directory is an operator's situation, not a bug: say which
        # directory and what to do instead of printing a traceback.
        cause = e
        while cause is not None and not isinstance(cause, EngineLocked):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        sys.stderr.write(f"CommandError: {cause}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
