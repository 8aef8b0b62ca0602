"""Audit events say who acted from the transaction's identity; documents carry the chain head they were made at.

Revision ID: 0008_audit_identity_and_heads
Revises: 0007_worker_role

- ``audit_events_chain()`` (``sql/audit.sql``) sets ``actor_user_id`` and ``actor_label`` itself, before the
  hash covers them: the user ``app.user_id`` names and their email, else 'system' (a login role that
  bypasses row-level security: the owner's commands) or 'background job' (the worker). What the inserting
  caller wrote there is ignored (the ``actor_is_self`` insert policy, which runs after the trigger, now
  checks the trigger's own values).
- ``documents`` gets ``audit_head_seq`` and ``audit_head_hash``: the organization's chain head when the
  document was made, which its text shows too (``services.receipts.issue_receipt`` always writes one;
  receipts issued before keep none, and so do rows tests plant by hand), and ``documents_audit_head()``
  refuses a head that is not in the organization's trail. ``backoffice audit verify --from-documents``
  checks each is still there.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0008_audit_identity_and_heads"
down_revision = "0007_worker_role"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table documents
            add column audit_head_seq bigint check (audit_head_seq > 0),
            add column audit_head_hash text check (audit_head_hash ~ '^[0-9a-f]{64}$');
        alter table documents
            add constraint documents_audit_head_whole check ((audit_head_seq is null) = (audit_head_hash is null));
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    # Documents are append-only and their heads are part of what they say: nothing to undo.
    pass
