"""Event handlers; each module registers its functions in the dispatch table on import."""

from callbacks.handlers import basic  # noqa: F401
