"""The SQL by area, the domain's rules in SQL, one append-only trigger function for every append-only table.

Revision ID: 0006_sql_by_area
Revises: 0005_notifications

- The files under ``sql/`` (``backoffice.schema.SQL_FILES``) are applied again: ``reject_change()``
  (``sql/append_only.sql``) now refuses UPDATE, DELETE and TRUNCATE on audit_events, ledger_entries (which
  had no TRUNCATE guard), documents, evidence_files, evidence_chunks and ap_export_chunks.
- ``sql/rules.sql`` holds the SQL twins of the rules named in ``backoffice/domain`` (who decides, where work
  is reviewed, the engagement, milestone and invoice moves, an approval's amounts); the guards call them
  instead of restating them, and tests/integration/test_rule_parity.py holds each equal to its Python.
- The three functions it replaces are dropped once no trigger uses them (no CASCADE: should one still be
  in use, the migration fails instead of dropping a guard).
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0006_sql_by_area"
down_revision = "0005_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_rls_policies()
    op.execute(
        """
        drop function if exists audit_events_reject_change();
        drop function if exists ledger_entries_reject_change();
        drop function if exists documents_reject_change();
        """
    )


def downgrade() -> None:
    # Nothing to undo: the files are always the current ones, and 0005 applies them the same way.
    pass
