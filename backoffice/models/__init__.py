"""SQLAlchemy models. The schema itself is defined by the Alembic migrations; these map onto it."""
from backoffice.models.base import Base
from backoffice.models.org import AuditEvent, Contractor, Invite, Membership, Organization, User

__all__ = ["Base", "Organization", "User", "Membership", "Contractor", "Invite", "AuditEvent"]
