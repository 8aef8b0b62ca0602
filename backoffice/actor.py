from __future__ import annotations

import uuid
from dataclasses import dataclass

from backoffice.domain.roles import Role
from backoffice.errors import Forbidden


@dataclass(frozen=True)
class Actor:
    """Who is acting, in which organization, with which role. Services take it explicitly."""

    user_id: uuid.UUID | None  # None: the organization's worker (services.notifications.worker_actor)
    org_id: uuid.UUID
    role: Role
    label: str  # the user's email, for display (an audit event's actor comes from the database: sql/audit.sql)
    name: str = ""
    contractor_id: uuid.UUID | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden()
