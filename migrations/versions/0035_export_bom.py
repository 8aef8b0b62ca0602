"""Excel-friendly AP files: a byte-order mark on the generic and custom layouts (issue 22, item 11).

Revision ID: 0035_export_bom
Revises: 0034_user_preferences

``organizations.ap_export_bom``: the generic and custom layouts' files start with the UTF-8 byte-order mark, so
Excel reads non-ASCII names and the em dash as written (on by default, for every organization: the files were
garbled in Excel before). The accounting systems' presets never carry one (backoffice/domain/ap_export.py,
BOM_PRESETS). Batches already written keep their bytes: the layout a batch was made with is stored on it.
The admin changes it on the export settings page (UPDATE grant: sql/rls_policies.sql).
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0035_export_bom"
down_revision = "0034_user_preferences"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table organizations add column if not exists ap_export_bom boolean not null default true")
    apply_rls_policies()


def downgrade() -> None:
    op.execute("alter table organizations drop column if exists ap_export_bom")
    apply_rls_policies()
