"""The environment the settings come from: process variables first, then the git-ignored
`.env` file that `make run` creates, parsed by django-environ.

Shared by settings.py and gunicorn_conf.py: the gunicorn master reads its few settings
through here without importing Django's settings (no secret-key check, no directories made).
Every variable is documented once, in .env.example.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


class Environment(environ.Env):
    """django-environ's Env with this service's rules: an empty variable is unset (so
    `CLICKHOUSE_HOST=` in a .env file means the embedded engine), surrounding blanks are
    ignored, and a value that does not parse stops start-up with one line naming the
    variable instead of being read as false or zero."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        raw = self.ENVIRON.get(var)
        if raw is None or not raw.strip():
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable.")
            return default
        value = raw.strip()
        if cast is bool:
            if value.lower() not in TRUE | FALSE:
                raise ImproperlyConfigured(f"{var} must be true or false, got {value!r}.")
            return value.lower() in TRUE
        if cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                kind = "an integer" if cast is int else "a number"
                raise ImproperlyConfigured(f"{var} must be {kind}, got {value!r}.") from None
        if cast is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return self.parse_value(value, cast)


def env_file() -> Path | None:
    """The .env file read at start: ANALYTICS_ENV_FILE (relative to the repository), `.env`
    by default; empty for none (the test suite sees only its own environment)."""
    name = os.environ.get("ANALYTICS_ENV_FILE", ".env").strip()
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else BASE_DIR / path


def load_env_file() -> None:
    """Read the .env file, if there is one, into os.environ; variables already set win."""
    path = env_file()
    if path is not None and path.is_file():
        # parse_comments: a copy of .env.example keeps its `# …` notes after the values.
        Environment.read_env(path, parse_comments=True)


load_env_file()
env = Environment()
