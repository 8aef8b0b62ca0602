from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import BigInteger
from sqlalchemy.orm import DeclarativeBase


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Base(DeclarativeBase):
    # Money is bigint minor units: a plain int maps to BIGINT so no amount above 2^31 - 1 cents
    # (about 21 million dollars) is ever bound as a 32-bit integer.
    type_annotation_map: ClassVar[dict[Any, Any]] = {int: BigInteger}
