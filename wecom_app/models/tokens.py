"""Named API tokens: stored as SHA-256 digests only, each read-only or read-write."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from wecom_app.models.base import Base, BigId, UTCDateTime


class ApiToken(Base):
    """A bearer token for /api/v1 given to one integration; revoked ones stay, marked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token, hex
    access: Mapped[str] = mapped_column(String(8))  # read, write
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
