"""Gunicorn settings for wecom-app (the packaged ones: wecom_app/web/gunicorn_conf.py).

Run: gunicorn -c config/gunicorn.conf.py "wecom_app:create_app()"   (or: wecom-app serve)

Every value can be overridden from the environment: GUNICORN_BIND, WEB_CONCURRENCY,
GUNICORN_THREADS, GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE,
GUNICORN_MAX_REQUESTS, GUNICORN_ACCESS_LOG, GUNICORN_LOG_LEVEL, FORWARDED_ALLOW_IPS (see there).
"""

import runpy

# read afresh each time this file is read, so the environment at that moment applies
globals().update(
    (name, value)
    for name, value in runpy.run_module("wecom_app.web.gunicorn_conf").items()
    if not name.startswith("_")
)
