"""Secrets are never chosen by the caller: reset tokens made by the database, throttle limits from the server.

Revision ID: 0009_server_secrets
Revises: 0008_audit_identity_and_heads

- ``password_resets.token``: the token ``password_reset_start(p_email)`` (``sql/auth.sql``) now generates
  itself, kept only until the worker takes it to mail the link (``password_reset_token()``, the worker
  role's alone, clears it). The two-argument ``password_reset_start(p_email, p_token_hash)``, which took
  the token's hash from the caller, is dropped.
- ``login_settings``: one row, the failed-login throttle's limits (defaults 5 failures, 15 minutes),
  row-level security forced, no policy and no grant: ``auth_record_failure(p_email)`` reads it, and
  ``backoffice.schema.upgrade`` writes it as the owner role from ``BACKOFFICE_LOGIN_MAX_FAILURES`` and
  ``BACKOFFICE_LOGIN_LOCK_MINUTES``. The three-argument ``auth_record_failure`` is dropped.
- ``email_messages``: the web role's ``own_account_messages`` policy goes (a web request could name any
  account in app.user_id and read its reset link); account messages are the worker role's alone.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0009_server_secrets"
down_revision = "0008_audit_identity_and_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table password_resets add column token text check (token ~ '^[0-9a-f]{64}$');
        create table login_settings (
            id boolean primary key default true check (id),
            max_failures integer not null default 5 check (max_failures between 1 and 100),
            lock_minutes integer not null default 15 check (lock_minutes between 1 and 1440),
            updated_at timestamptz not null default now()
        );
        insert into login_settings default values;
        drop policy if exists own_account_messages on email_messages;
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    # Nothing to undo: the files are always the current ones, and every earlier revision applies them the same way.
    pass
