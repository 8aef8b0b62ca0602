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


STAFF_ROLES = frozenset({Role.ADMIN, Role.OWNER, Role.FINANCE})
AUDIT_READERS = frozenset({Role.ADMIN, Role.FINANCE})
# Who works the payment queue: exports, records payments, reads batches and the ledger.
FINANCE_ROLES = frozenset({Role.ADMIN, Role.FINANCE})
