"""Gunicorn settings for wecom-app (the packaged ones: wecom_app/web/gunicorn_conf.py).

Run: gunicorn -c config/gunicorn.conf.py "wecom_app:create_app()"   (or: wecom-app serve)

Every value can be overridden from the environment: GUNICORN_BIND, WEB_CONCURRENCY,
GUNICORN_THREADS, GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE,
GUNICORN_MAX_REQUESTS, GUNICORN_ACCESS_LOG, GUNICORN_LOG_LEVEL, FORWARDED_ALLOW_IPS (see there).
"""

import importlib.util
import runpy
from pathlib import Path

# Found, not imported: gunicorn's master must not load the app (workers a reload starts would
# keep the old code); read afresh each time, so the environment at that moment applies.
_spec = importlib.util.find_spec("wecom_app")
assert _spec is not None and _spec.submodule_search_locations
_packaged = Path(next(iter(_spec.submodule_search_locations))) / "web" / "gunicorn_conf.py"
globals().update(
    (name, value)
    for name, value in runpy.run_path(str(_packaged)).items()
    if not name.startswith("_")
)
