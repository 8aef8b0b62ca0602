"""Roles within an organization and what each may do. The database enforces the same rules (RLS)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OWNER = "owner"
    FINANCE = "finance"
    CONTRACTOR = "contractor"

    @property
    def label(self) -> str:
        return {"admin": "Admin", "owner": "Project owner", "finance": "Finance", "contractor": "Contractor"}[
            self.value
        ]


# One name per role set; every module imports these instead of spelling a set out.
# The organization's own people (everyone but contractors): they read the retainage report.
STAFF_ROLES = frozenset({Role.ADMIN, Role.OWNER, Role.FINANCE})
# Who sets up and runs engagements and decides on their work: admins on every engagement, a project
# owner on the ones they own (domain.engagements.can_decide says which engagement is whose).
MANAGERS = frozenset({Role.ADMIN, Role.OWNER})
# Who works the payment queue (exports, records payments, reads batches and the ledger), the data room
# and the audit trail.
FINANCE_ROLES = frozenset({Role.ADMIN, Role.FINANCE})
