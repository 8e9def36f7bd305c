"""Benchmarks run against a real gunicorn with config/gunicorn.conf.py (see scripts/bench_*)."""
