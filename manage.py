#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as e:
        # Missing settings, a locked data directory, an unreachable ClickHouse: the operator's
        # situation, not a bug. One line with the cause and the fix; --traceback for the rest.
        from analytics_site.command_errors import explain

        message = None if "--traceback" in sys.argv else explain(e)
        if message is None:
            raise
        sys.stderr.write(f"CommandError: {message}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
