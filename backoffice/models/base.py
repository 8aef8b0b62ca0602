from __future__ import annotations

import uuid

from sqlalchemy.orm import DeclarativeBase


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Base(DeclarativeBase):
    pass
