"""Gunicorn settings for wecom-app; every value can be overridden from the environment.

Packaged, so that an installed wecom-app needs no checkout: `wecom-app serve` runs gunicorn
with this file, and config/gunicorn.conf.py, for
`gunicorn -c config/gunicorn.conf.py "wecom_app:create_app()"`, reads it from here. It imports
nothing of the app: gunicorn's master never loads it, so a reload (HUP) starts workers with
the code on disk.

Environment (all optional):
  GUNICORN_BIND             address(es) to listen on, comma-separated   [0.0.0.0:8000]
  WEB_CONCURRENCY           worker processes                            [2 * cores + 1, max 12]
  GUNICORN_THREADS          threads per worker (gthread)                [4]
  GUNICORN_TIMEOUT          seconds before a silent worker is killed    [30]
  GUNICORN_GRACEFUL_TIMEOUT seconds to finish requests on restart       [30]
  GUNICORN_KEEPALIVE        seconds to hold an idle keep-alive socket   [5]
  GUNICORN_MAX_REQUESTS     recycle a worker after N requests, 0 = off  [0]
  GUNICORN_ACCESS_LOG       "-" for stdout, a file path, or "off"       [-]
  GUNICORN_LOG_LEVEL        gunicorn's own log level                    [info]
  FORWARDED_ALLOW_IPS       proxies whose X-Forwarded-* are trusted     [127.0.0.1]

Workers are forked without preloading the app: each worker reads settings and opens its own
database pool, so no connection or SQLite handle is ever shared across a fork.
"""

import gc
import os


def _int_env(name: str, default: int) -> int:
    """Read a positive integer from the environment, naming the key when it is malformed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must not be negative, got {value}")
    return value


def _default_workers() -> int:
    """2 * cores + 1, capped: beyond a dozen processes the database, not Python, is the limit."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(2 * (cores or 1) + 1, 12)


bind = [b.strip() for b in os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",") if b.strip()]
workers = max(_int_env("WEB_CONCURRENCY", _default_workers()), 1)
worker_class = "gthread"
threads = max(_int_env("GUNICORN_THREADS", 4), 1)

# WeCom waits 5 s for a callback answer and then retries; a request still running after 30 s is
# stuck, not slow.
timeout = _int_env("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int_env("GUNICORN_KEEPALIVE", 5)
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10

preload_app = False
# Heartbeat files on tmpfs: a container's overlay disk can stall the heartbeat and get healthy
# workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

_access_log = os.environ.get("GUNICORN_ACCESS_LOG", "-").strip()
accesslog = None if _access_log.lower() in ("", "off", "none", "0") else _access_log
# Path only (%(U)s), never the request line or query string: callback query strings carry
# msg_signature/timestamp/nonce, and API requests may carry tokens. No referer either, for the
# same reason. %(M)s is the request time in milliseconds.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info").lower()
capture_output = False
proc_name = "wecom-app"


def post_worker_init(worker: object) -> None:
    """Once a worker has loaded the app, set its objects aside from the garbage collector: a
    full collection otherwise walks every module, route and mapper on a request's time (about
    200 ms at p99 in scripts/bench_console), and they live as long as the process anyway."""
    gc.freeze()
