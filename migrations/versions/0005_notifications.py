"""Notifications and documents: the job queue, email messages, in-app notices, receipts, password resets.

Revision ID: 0005_notifications
Revises: 0004_money

- The job queue is procrastinate's own schema, installed in a schema of its own (``procrastinate``) so
  that ``public`` keeps holding only tenant tables, every one under row-level security (``backoffice
  doctor`` checks that). Jobs are rows, inserted in the transaction that changes the state.
- ``email_messages``: one row per message, the outbox. Org messages are read by admins; account
  messages (password resets, ``org_id`` null) only by the account they are for.
- ``notifications``: the in-app notices, one row per person and event.
- ``documents``: receipts, written once (append-only, one per invoice), read by finance and admins.
- ``password_resets``: one-time links, stored hashed, used only through SECURITY DEFINER functions.
- Organizations get the review SLA (days) and the locale amounts are written in.
"""

from alembic import op
from procrastinate.schema import SchemaManager

from backoffice.schema import apply_rls_policies

revision = "0005_notifications"
down_revision = "0004_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        alter table organizations
            add column review_sla_days integer not null default 3 check (review_sla_days between 1 and 60),
            add column locale text not null default 'en_US' check (locale ~ '^[a-z]{2,3}(_[A-Z]{2})?$');

        create table email_messages (
            id uuid primary key default gen_random_uuid(),
            org_id uuid references organizations (id),            -- null: an account message (password reset)
            event text not null check (event ~ '^[a-z_.]{3,60}$'),
            recipient_user_id uuid references users (id),
            recipient text not null check (length(recipient) between 3 and 254),
            subject text not null check (length(subject) between 1 and 300),
            html text not null,
            text text not null,
            -- queued: waiting for the worker; kept: no RESEND_API_KEY, kept here instead of sent;
            -- retrying: a timeout or 5xx, tried again with backoff; sent; failed: refused (4xx) or gave up.
            status text not null default 'queued' check (status in ('queued', 'kept', 'retrying', 'sent', 'failed')),
            attempts integer not null default 0 check (attempts >= 0),
            last_error text,
            provider_id text,
            dedupe_key text not null,                             -- one message per event and recipient
            entity_type text,
            entity_id text,
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            sent_at timestamptz,
            constraint email_messages_sent_has_provider_id check (status <> 'sent' or provider_id is not null),
            constraint email_messages_account_messages check (org_id is not null or (event = 'password_reset' and recipient_user_id is not null))
        );
        create unique index email_messages_dedupe on email_messages (coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid), dedupe_key);
        create index email_messages_outbox on email_messages (org_id, created_at desc);
        create index email_messages_account on email_messages (recipient_user_id) where org_id is null;

        create table notifications (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            user_id uuid not null references users (id),
            event text not null check (event ~ '^[a-z_.]{3,60}$'),
            title text not null check (length(title) between 1 and 300),
            body text not null default '',
            url text not null check (url ~ '^/'),                 -- a path inside the app
            dedupe_key text not null,
            created_at timestamptz not null default now(),
            read_at timestamptz,
            unique (org_id, dedupe_key)
        );
        create index notifications_inbox on notifications (org_id, user_id, created_at desc);
        create index notifications_unread on notifications (org_id, user_id) where read_at is null;

        create table documents (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            kind text not null check (kind in ('receipt')),
            invoice_id uuid not null,
            transaction_id text not null unique check (transaction_id ~ '^TX-[0-9A-F]{20}$'),
            title text not null,
            filename text not null check (filename ~ '^[A-Za-z0-9._-]{1,120}$'),
            content_type text not null default 'application/pdf',
            content bytea not null,
            size_bytes integer not null check (size_bytes > 0),
            sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
            contractor_id uuid not null,
            engagement_id uuid not null,
            issued_at timestamptz not null default now(),
            foreign key (org_id, invoice_id) references invoices (org_id, id),
            constraint documents_size check (size_bytes = length(content)),
            constraint documents_hash check (sha256 = encode(sha256(content), 'hex'))
        );
        create unique index documents_one_receipt_per_invoice on documents (invoice_id) where kind = 'receipt';
        create index documents_data_room on documents (org_id, issued_at desc);

        create table password_resets (
            id uuid primary key default gen_random_uuid(),
            user_id uuid not null references users (id),
            token_hash text not null unique,
            created_at timestamptz not null default now(),
            expires_at timestamptz not null default now() + interval '1 hour',
            used_at timestamptz
        );
        create index password_resets_user on password_resets (user_id, created_at desc);

        create schema procrastinate;
        """
    )
    conn = op.get_bind().connection.driver_connection
    # procrastinate's SQL names its objects without a schema: install it with the search path on its schema.
    conn.execute("set local search_path = procrastinate, pg_catalog")
    conn.execute(SchemaManager.get_schema())
    conn.execute("reset search_path")
    # Its functions and triggers then work whatever the caller's search path is.
    op.execute(
        r"""
        do $$
        declare v_fn regprocedure;
        begin
          for v_fn in select p.oid::regprocedure from pg_proc p where p.pronamespace = 'procrastinate'::regnamespace loop
            execute format('alter function %s set search_path = procrastinate, pg_catalog', v_fn);
          end loop;
        end
        $$;
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    op.execute(
        """
        drop schema procrastinate cascade;
        drop table password_resets, documents, notifications, email_messages;
        alter table organizations drop column review_sla_days, drop column locale;
        """
    )
