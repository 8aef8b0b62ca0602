"""The database decides who is signed in: sign-in sessions with tokens only it makes.

Revision ID: 0010_sign_in_sessions
Revises: 0009_server_secrets

Before, the helpers believed ``app.user_id`` from every connection, so SQL run as the web role could
name any account there (``auth_lookup`` handed out account ids by email) and act as it, an admin of any
organization included. Now (``sql/rls_policies.sql``, ``sql/auth.sql``):

- ``user_sessions``: one row per sign-in, the token's sha256 only, an expiry (``login_settings.session_hours``,
  from ``BACKOFFICE_SESSION_HOURS``, default 12) and when it ended (sign-out, or a password reset).
  Row-level security forced, no policy and no grant.
- For the web role, ``app_user_id()`` and the membership helpers take the person from the session whose
  token the connection presents in ``app.session``; ``app.user_id`` counts only for the worker and the
  owner role.
- Sign-in: ``auth_password_salt(email, method)`` gives the account's hash method and salt (made up,
  stable, for an address without an account); the server hashes the password with them and
  ``auth_sign_in(email, candidate)`` compares, keeps the throttle, and opens the session. The web role
  never sees a password hash or another account's id. ``auth_lookup`` is dropped, and the throttle's
  bookkeeping (``auth_record_failure``, ``auth_record_success``) is no longer the web role's to call.
- ``login_settings.salt_key``: the server's random key for the made-up salts.
- ``users.sessions_revoked_at`` goes: signing out ends the person's sessions instead.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0010_sign_in_sessions"
down_revision = "0009_server_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table user_sessions (
            id uuid primary key default gen_random_uuid(),
            user_id uuid not null references users (id),
            token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
            created_at timestamptz not null default now(),
            expires_at timestamptz not null,
            ended_at timestamptz,
            check (expires_at > created_at)
        );
        create index user_sessions_open_by_user on user_sessions (user_id) where ended_at is null;
        alter table login_settings
            add column session_hours integer not null default 12 check (session_hours between 1 and 720),
            add column salt_key text not null default replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
        alter table users drop column sessions_revoked_at;
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    # Nothing to undo: the files are always the current ones, and every earlier revision applies them the same way.
    pass
