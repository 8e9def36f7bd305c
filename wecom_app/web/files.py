"""A table as a file to download (CSV or XLSX), for the API and the console alike."""

from __future__ import annotations

from typing import Any

from flask import Response

from wecom_app.sla import export


def table_download(
    name: str, title: str, columns: list[tuple[str, str]], rows: list[dict[str, Any]], fmt: str
) -> Response:
    """`rows` as `name`.csv or `name`.xlsx (one sheet called `title`)."""
    data, kind = export.table_file(title, columns, rows, fmt)
    response = Response(data, content_type=kind)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
