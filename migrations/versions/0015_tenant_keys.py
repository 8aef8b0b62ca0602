"""Account messages move out of email_messages, whose every row becomes one organization's (issue 23, item 8).

Revision ID: 0015_tenant_keys
Revises: 0013_export_speed

A password reset's email belongs to an account, not to an organization: it was an ``email_messages`` row
with ``org_id`` null. A database distributed by organization (Citus) cannot place a row without its
distribution column, and a primary key cannot include a column that may be null, so these messages move to
``account_messages``, one table for every account, like ``password_resets``, the worker role's alone (its
policies move with them). ``email_messages.org_id`` becomes NOT NULL and its dedupe key ``(org_id,
dedupe_key)`` instead of an expression of a null org.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0015_tenant_keys"
down_revision = "0013_export_speed"
branch_labels = None
depends_on = None

ACCOUNT_MESSAGES = """
    create table account_messages (
        id uuid primary key default gen_random_uuid(),
        event text not null check (event = 'password_reset'),
        recipient_user_id uuid not null references users (id),
        recipient text not null check (length(recipient) between 3 and 254),
        subject text not null check (length(subject) between 1 and 300),
        html text not null,
        text text not null,
        status text not null default 'queued' check (status in ('queued', 'kept', 'retrying', 'sent', 'failed')),
        attempts integer not null default 0 check (attempts >= 0),
        last_error text,
        provider_id text,
        dedupe_key text not null unique,
        entity_type text,
        entity_id text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        sent_at timestamptz,
        constraint account_messages_sent_has_provider_id check (status <> 'sent' or provider_id is not null)
    );
    create index account_messages_recipient on account_messages (recipient_user_id);
    insert into account_messages (id, event, recipient_user_id, recipient, subject, html, text, status, attempts,
                                  last_error, provider_id, dedupe_key, entity_type, entity_id, created_at, updated_at,
                                  sent_at)
    select id, event, recipient_user_id, recipient, subject, html, text, status, attempts, last_error, provider_id,
           dedupe_key, entity_type, entity_id, created_at, updated_at, sent_at
      from email_messages where org_id is null;
    delete from email_messages where org_id is null;
    drop policy if exists worker_account_messages_insert on email_messages;
    drop policy if exists worker_account_messages_select on email_messages;
    drop policy if exists worker_account_messages_update on email_messages;
    drop index email_messages_account;
    drop index email_messages_dedupe;
    alter table email_messages
        drop constraint email_messages_account_messages,
        alter column org_id set not null,
        add constraint email_messages_dedupe unique (org_id, dedupe_key);
"""


def upgrade() -> None:
    op.execute(ACCOUNT_MESSAGES)
    apply_rls_policies()


def downgrade() -> None:
    # The SQL files stay the current ones, as for every revision: an account message moved back has no policy.
    op.execute(
        """
        alter table email_messages drop constraint email_messages_dedupe, alter column org_id drop not null,
            add constraint email_messages_account_messages
                check (org_id is not null or (event = 'password_reset' and recipient_user_id is not null));
        create unique index email_messages_dedupe
            on email_messages (coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid), dedupe_key);
        create index email_messages_account on email_messages (recipient_user_id) where org_id is null;
        insert into email_messages (id, org_id, event, recipient_user_id, recipient, subject, html, text, status,
                                    attempts, last_error, provider_id, dedupe_key, entity_type, entity_id, created_at,
                                    updated_at, sent_at)
        select id, null, event, recipient_user_id, recipient, subject, html, text, status, attempts, last_error,
               provider_id, dedupe_key, entity_type, entity_id, created_at, updated_at, sent_at
          from account_messages;
        drop table account_messages;
        """
    )
