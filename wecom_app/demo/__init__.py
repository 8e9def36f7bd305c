"""The end-to-end demo: simulator and app as real processes, each feature telling its story.

Each feature module in this package exports `run(demo: Demo) -> None`; `STEPS` orders them.
"""
