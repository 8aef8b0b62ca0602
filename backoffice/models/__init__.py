"""SQLAlchemy models. The schema itself is defined by the Alembic migrations; these map onto it."""
from backoffice.models.base import Base
from backoffice.models.engagements import (
    ChangeOrder,
    ChangeOrderLine,
    Engagement,
    Milestone,
)
from backoffice.models.org import (
    AuditEvent,
    Contractor,
    Invite,
    Membership,
    Organization,
    User,
)

__all__ = [
    "AuditEvent",
    "Base",
    "ChangeOrder",
    "ChangeOrderLine",
    "Contractor",
    "Engagement",
    "Invite",
    "Membership",
    "Milestone",
    "Organization",
    "User",
]
