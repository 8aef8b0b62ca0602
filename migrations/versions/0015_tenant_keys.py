"""Every key of a tenant table includes org_id, so the schema can be distributed by organization (issue 23, item 8).

Revision ID: 0015_tenant_keys
Revises: 0014_page_speed

A database distributed by ``org_id`` (Citus) keeps each organization's rows together and can only enforce a
key whose columns include ``org_id``. Foreign keys between tenant tables already matched ``org_id`` to
``org_id``; the keys did not:

- Primary keys ``(id)`` become ``(org_id, id)`` (the chunk tables' ``(org_id, batch_id | file_id, chunk_no)``),
  under their old names (``sql/new_ids.sql`` raises in the ``<table>_pkey``'s words). An id is now unique
  within its organization: another organization's row may carry the same one, and writing it neither reads
  nor locks the first. The unique ``(org_id, id)`` constraints of contractors, invoices and AP export batches
  were the primary key's twin: the foreign keys that used them are pointed at the primary key instead.
- Every unique constraint and unique index gains ``org_id``: each guarantee stays the one it was, since the
  row it names (a milestone, a review, an invoice, a submission ...) is one organization's. The names code
  matches (``invoices_one_per_milestone``, ``invoices_one_per_review``, ``payments_one_per_invoice``,
  ``reviews_one_per_submission``, ``milestones_engagement_seq_key``, still deferrable) are kept; the others
  are named for their new columns. Where a plain index had exactly the new key's columns it goes (change
  orders and their lines, evidence files, submissions, milestones by engagement and position): the key's
  index serves the same reads. An invitation's token is looked up across organizations (the link is all
  the invitee has), so that key is ``(token_hash, org_id)``.
- Account messages (a password reset's email, no organization: ``org_id`` null) move from ``email_messages``
  to ``account_messages``, one table for every account, like ``password_resets``: a distributed table cannot
  hold a row without its distribution column, and a primary key cannot include a column that may be null.
  ``email_messages.org_id`` becomes NOT NULL and its dedupe key ``(org_id, dedupe_key)``.

``tests/integration/test_tenant_keys.py`` holds every table to this from the catalog; the README's "Running
beyond one machine" says what distribution would still need.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0015_tenant_keys"
down_revision = "0014_page_speed"
branch_labels = None
depends_on = None

# Primary key (id) -> (org_id, id), under the same name.
BY_ID = (
    "ap_export_batches",
    "audit_events",
    "change_order_lines",
    "change_orders",
    "contractors",
    "documents",
    "email_messages",
    "engagements",
    "evidence_files",
    "invites",
    "invoices",
    "ledger_entries",
    "memberships",
    "milestones",
    "notifications",
    "payments",
    "reviews",
    "submissions",
)

# Foreign keys on the unique (org_id, id) twins of the new primary keys: (table, name, columns, referenced).
ON_TWINS = (
    ("memberships", "memberships_org_id_contractor_id_fkey", "org_id, contractor_id", "contractors"),
    ("engagements", "engagements_org_id_contractor_id_fkey", "org_id, contractor_id", "contractors"),
    ("ledger_entries", "ledger_entries_org_id_invoice_id_fkey", "org_id, invoice_id", "invoices"),
    ("documents", "documents_org_id_invoice_id_fkey", "org_id, invoice_id", "invoices"),
    ("payments", "payments_org_id_batch_id_fkey", "org_id, batch_id", "ap_export_batches"),
    ("ap_export_chunks", "ap_export_chunks_org_id_batch_id_fkey", "org_id, batch_id", "ap_export_batches"),
    ("ap_batch_paid", "ap_batch_paid_org_id_batch_id_fkey", "org_id, batch_id", "ap_export_batches"),  # 0014's
)
TWINS = (
    ("contractors", "contractors_org_id_id_key"),
    ("invoices", "invoices_org_id_id_key"),
    ("ap_export_batches", "ap_export_batches_org_id_id_key"),
)

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

UNIQUE_KEYS = """
    alter table evidence_chunks drop constraint evidence_chunks_pkey,
        add constraint evidence_chunks_pkey primary key (org_id, file_id, chunk_no);
    alter table ap_export_chunks drop constraint ap_export_chunks_pkey,
        add constraint ap_export_chunks_pkey primary key (org_id, batch_id, chunk_no);

    alter table milestones drop constraint milestones_engagement_seq_key,
        -- deferred so a reorder can swap positions inside one transaction
        add constraint milestones_engagement_seq_key unique (org_id, engagement_id, seq) deferrable initially deferred;
    drop index milestones_org_engagement_seq_idx;
    alter table change_orders drop constraint change_orders_engagement_id_number_key,
        add constraint change_orders_org_id_engagement_id_number_key unique (org_id, engagement_id, number);
    drop index change_orders_org_engagement_idx;
    alter table change_order_lines drop constraint change_order_lines_change_order_id_line_no_key,
        add constraint change_order_lines_org_id_change_order_id_line_no_key unique (org_id, change_order_id, line_no);
    drop index change_order_lines_org_co_idx;

    alter table submissions drop constraint submissions_milestone_id_revision_key,
        add constraint submissions_org_id_milestone_id_revision_key unique (org_id, milestone_id, revision);
    drop index submissions_org_milestone_idx;
    alter table evidence_files drop constraint evidence_files_submission_id_position_key,
        add constraint evidence_files_org_id_submission_id_position_key unique (org_id, submission_id, position);
    drop index evidence_files_org_submission_idx;
    alter table reviews drop constraint reviews_one_per_submission,
        add constraint reviews_one_per_submission unique (org_id, submission_id);

    alter table invoices drop constraint invoices_one_per_milestone,
        add constraint invoices_one_per_milestone unique (org_id, milestone_id),
        drop constraint invoices_one_per_review,
        add constraint invoices_one_per_review unique (org_id, review_id);
    drop index invoices_one_release_per_engagement;
    create unique index invoices_one_release_per_engagement on invoices (org_id, engagement_id)
        where kind = 'retainage_release';
    alter table payments drop constraint payments_one_per_invoice,
        add constraint payments_one_per_invoice unique (org_id, invoice_id);

    alter table documents drop constraint documents_transaction_id_key,
        add constraint documents_org_id_transaction_id_key unique (org_id, transaction_id);
    drop index documents_one_receipt_per_invoice;
    create unique index documents_one_receipt_per_invoice on documents (org_id, invoice_id) where kind = 'receipt';

    -- accept_invite() and invite_details() find an invitation by its token alone: token_hash leads.
    alter table invites drop constraint invites_token_hash_key,
        add constraint invites_token_hash_org_id_key unique (token_hash, org_id);
"""


def upgrade() -> None:
    op.execute(ACCOUNT_MESSAGES)
    for table, name, _, _ in ON_TWINS:
        op.execute(f"alter table {table} drop constraint {name}")
    for table in BY_ID:
        op.execute(
            f"alter table {table} drop constraint {table}_pkey, add constraint {table}_pkey primary key (org_id, id)"
        )
    for table, name in TWINS:
        op.execute(f"alter table {table} drop constraint {name}")
    for table, name, columns, referenced in ON_TWINS:
        op.execute(
            f"alter table {table} add constraint {name} foreign key ({columns}) references {referenced} (org_id, id)"
        )
    op.execute(UNIQUE_KEYS)
    apply_rls_policies()


def downgrade() -> None:
    # The SQL files stay the current ones, as for every revision: an account message moved back has no policy.
    op.execute(
        """
        alter table invites drop constraint invites_token_hash_org_id_key,
            add constraint invites_token_hash_key unique (token_hash);
        drop index documents_one_receipt_per_invoice;
        create unique index documents_one_receipt_per_invoice on documents (invoice_id) where kind = 'receipt';
        alter table documents drop constraint documents_org_id_transaction_id_key,
            add constraint documents_transaction_id_key unique (transaction_id);
        alter table payments drop constraint payments_one_per_invoice,
            add constraint payments_one_per_invoice unique (invoice_id);
        drop index invoices_one_release_per_engagement;
        create unique index invoices_one_release_per_engagement on invoices (engagement_id)
            where kind = 'retainage_release';
        alter table invoices drop constraint invoices_one_per_milestone,
            add constraint invoices_one_per_milestone unique (milestone_id),
            drop constraint invoices_one_per_review,
            add constraint invoices_one_per_review unique (review_id);
        alter table reviews drop constraint reviews_one_per_submission,
            add constraint reviews_one_per_submission unique (submission_id);
        create index evidence_files_org_submission_idx on evidence_files (org_id, submission_id, position);
        alter table evidence_files drop constraint evidence_files_org_id_submission_id_position_key,
            add constraint evidence_files_submission_id_position_key unique (submission_id, position);
        create index submissions_org_milestone_idx on submissions (org_id, milestone_id, revision desc);
        alter table submissions drop constraint submissions_org_id_milestone_id_revision_key,
            add constraint submissions_milestone_id_revision_key unique (milestone_id, revision);
        create index change_order_lines_org_co_idx on change_order_lines (org_id, change_order_id, line_no);
        alter table change_order_lines drop constraint change_order_lines_org_id_change_order_id_line_no_key,
            add constraint change_order_lines_change_order_id_line_no_key unique (change_order_id, line_no);
        create index change_orders_org_engagement_idx on change_orders (org_id, engagement_id, number);
        alter table change_orders drop constraint change_orders_org_id_engagement_id_number_key,
            add constraint change_orders_engagement_id_number_key unique (engagement_id, number);
        create index milestones_org_engagement_seq_idx on milestones (org_id, engagement_id, seq);
        alter table milestones drop constraint milestones_engagement_seq_key,
            add constraint milestones_engagement_seq_key unique (engagement_id, seq) deferrable initially deferred;
        alter table ap_export_chunks drop constraint ap_export_chunks_pkey,
            add constraint ap_export_chunks_pkey primary key (batch_id, chunk_no);
        alter table evidence_chunks drop constraint evidence_chunks_pkey,
            add constraint evidence_chunks_pkey primary key (file_id, chunk_no);
        """
    )
    # Fails, as the keys would, if two organizations now hold rows with the same id.
    for table, name, _, _ in ON_TWINS:
        op.execute(f"alter table {table} drop constraint {name}")
    for table, name in TWINS:
        op.execute(f"alter table {table} add constraint {name} unique (org_id, id)")
    for table in BY_ID:
        op.execute(f"alter table {table} drop constraint {table}_pkey, add constraint {table}_pkey primary key (id)")
    for table, name, columns, referenced in ON_TWINS:
        op.execute(
            f"alter table {table} add constraint {name} foreign key ({columns}) references {referenced} (org_id, id)"
        )
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
