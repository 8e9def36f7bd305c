"""`python -m wecom_app.cli` runs the same command as `wecom-app`."""

from wecom_app.cli import main

main()
