"""Who a person may see is computed once a statement, not once per membership (issue 23, item 2).

Revision ID: 0017_visible_users_once
Revises: 0016_outbox_speed

``app_visible_user_ids()`` (sql/rls_policies.sql), which the users policy calls once per statement, called
the context helpers once per membership row of the organization: 35 ms at 525 members, paid by every page
that names a person. It now evaluates each helper once. This revision re-applies the SQL files.
"""

from backoffice.schema import apply_rls_policies

revision = "0017_visible_users_once"
down_revision = "0016_outbox_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_rls_policies()


def downgrade() -> None:
    pass  # the SQL files are always the current ones
