"""Payment controls (issue 18): approval policies and their steps, each invoice's approvals, delegations, holds.

Revision ID: 0027_approval_controls
Revises: 0026_rail_reconciliation
"""

from backoffice.schema import apply_rls_policies

revision = "0027_approval_controls"
down_revision = "0026_rail_reconciliation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_rls_policies()


def downgrade() -> None:
    pass
