# Viewing analytics service. Multi-stage: wheels are built with compilers in the first stage,
# the final image has only the virtualenv, the code and a non-root user.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app analytics_site ./analytics_site
COPY --chown=app:app viewing ./viewing
COPY --chown=app:app clickhouse ./clickhouse
COPY --chown=app:app manage.py ./
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DJANGO_DEBUG=false \
    ANALYTICS_VAR_DIR=/app/var \
    PORT=8006 \
    BIND_ADDRESS=0.0.0.0
RUN mkdir -p /app/var && chown app:app /app/var
USER app
EXPOSE 8006
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8006/health', timeout=2).status != 200)"
CMD ["gunicorn", "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"]
