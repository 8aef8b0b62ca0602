"""GET /healthz asks the database: ``service_health()`` (``sql/jobs.sql``) gives the schema's revision and how
many job workers beat in the last minute, to the web and worker roles (nothing of any tenant).

Revision ID: 0012_service_health
Revises: 0011_least_privilege
"""

from backoffice.schema import apply_rls_policies

revision = "0012_service_health"
down_revision = "0011_least_privilege"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_rls_policies()


def downgrade() -> None:
    # Nothing to undo: the files are always the current ones, and every earlier revision applies them the same way.
    pass
