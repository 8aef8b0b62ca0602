"""Each person's preferences, and emails held for a daily digest (issue 22, item 10).

Revision ID: 0034_user_preferences
Revises: 0033_search

``user_preferences``: one row per person (not per membership: a person has one clock and one mailbox), their IANA
time zone (the pages and their emails show times in it) and how they want emails: ``each`` event as it happens, or
``daily``, one digest a day (in-app notices still arrive at once). A separate table because ``users`` is not
updatable by the web role (sql/rls_policies.sql): here a person reads and writes only their own row, the worker reads
the rows of its organization's members. Policies and grants: sql/preferences.sql.

``email_messages``: a message to a person who chose the daily digest is written ``held`` (the outbox says "held for
the daily digest") and not sent; the digest job writes one message listing them and marks each ``digested`` with the
digest's id, in the same transaction (services/digests.py).
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0034_user_preferences"
down_revision = "0033_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        create table if not exists user_preferences (
            user_id uuid primary key references users (id),
            time_zone text not null default 'UTC' check (length(time_zone) between 1 and 64),
            notify text not null default 'each' check (notify in ('each', 'daily')),
            updated_at timestamptz not null default now()
        );

        alter table email_messages add column if not exists digest_id uuid;
        -- A held message's link (the path its notice leads to), for the digest to list it by: the worker reads no
        -- notifications row to find it there.
        alter table email_messages add column if not exists link text check (length(link) <= 2000);
        alter table email_messages drop constraint if exists email_messages_status_check;
        alter table email_messages add constraint email_messages_status_check
            check (status in ('queued', 'kept', 'retrying', 'sent', 'failed', 'held', 'digested'));
        alter table email_messages drop constraint if exists email_messages_digested_names_its_digest;
        alter table email_messages add constraint email_messages_digested_names_its_digest
            check ((status = 'digested') = (digest_id is not null));
        -- The digest job's walk: a person's held messages, oldest first.
        create index if not exists email_messages_held
            on email_messages (org_id, recipient_user_id, created_at) where status = 'held';
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop index if exists email_messages_held;
        update email_messages set status = 'queued', digest_id = null where status in ('held', 'digested');
        alter table email_messages drop constraint if exists email_messages_digested_names_its_digest;
        alter table email_messages drop constraint if exists email_messages_status_check;
        alter table email_messages add constraint email_messages_status_check
            check (status in ('queued', 'kept', 'retrying', 'sent', 'failed'));
        alter table email_messages drop column if exists digest_id, drop column if exists link;
        drop table if exists user_preferences;
    """)
