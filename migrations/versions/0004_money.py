"""Money: payment authorizations (invoices), payments, AP export batches and the ledger.

Revision ID: 0004_money
Revises: 0003_reviews

An approved milestone becomes an invoice of kind ``milestone`` in the approval's transaction; the
retainage it withheld is released once per engagement by an invoice of kind ``retainage_release``.
Pay-once is structural: one milestone invoice per milestone, one release per engagement, one payment
per invoice, an invoice in at most one live batch (its ``batch_id``). Numbers (``ACME-000123``) come
from a per-organization counter row that the inserting transaction holds until it ends, so they are
gapless: a rolled-back approval gives its number back. The guards in sql/money.sql check
every amount against the engagement's terms, whoever writes.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0004_money"
down_revision = "0003_reviews"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        alter table organizations
            add column invoice_prefix text not null default 'INV' check (invoice_prefix ~ '^[A-Z0-9]{2,8}$'),
            -- the person who approved a milestone cannot record its payment (DESIGN.md section 1, finance)
            add column segregation_of_duties boolean not null default true,
            add column ap_expense_account text not null default 'Contract labor'
                check (length(btrim(ap_expense_account)) between 1 and 100),
            add column ap_export_date_format text not null default 'iso'
                check (ap_export_date_format in ('iso', 'us', 'eu')),
            add constraint organizations_ap_export_columns_count check (jsonb_array_length(ap_export_columns) <= 30);
        update organizations set invoice_prefix = left(upper(regexp_replace(name, '[^A-Za-z0-9]', '', 'g')), 4)
         where length(regexp_replace(name, '[^A-Za-z0-9]', '', 'g')) >= 2;

        -- Per-organization counters (invoice numbers, batch numbers). Only SECURITY DEFINER code reads
        -- or writes them: RLS is on with no policy at all.
        create table org_counters (
            org_id uuid not null references organizations (id),
            counter text not null check (counter in ('invoice', 'ap_batch')),
            last_value bigint not null check (last_value > 0),
            primary key (org_id, counter)
        );

        create table ap_export_batches (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            number integer not null check (number > 0),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            preset text not null check (preset in ('generic', 'quickbooks_online', 'xero', 'custom')),
            layout jsonb not null,       -- the columns, headers and date format the file was written with
            selection jsonb not null,    -- how the invoices were chosen (ids, or a filter)
            -- Sealed once the file is written, in the transaction that creates the batch (checked at commit).
            size_bytes bigint check (size_bytes > 0),
            sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
            row_count integer check (row_count > 0),
            total_minor bigint check (total_minor >= 0),
            invoice_ids uuid[] check (cardinality(invoice_ids) = row_count),
            check (num_nulls(size_bytes, sha256, row_count, total_minor, invoice_ids) in (0, 5)),
            status text not null default 'live' check (status in ('live', 'voided')),
            created_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            voided_by uuid references users (id),
            voided_at timestamptz,
            void_reason text check (void_reason is null or length(btrim(void_reason)) between 1 and 2000),
            unique (org_id, number),
            unique (org_id, id),
            check ((status = 'voided') = (voided_at is not null)),
            check ((status = 'voided') = (voided_by is not null and void_reason is not null))
        );
        create index ap_export_batches_org_number_idx on ap_export_batches (org_id, number desc);

        -- The file's bytes, in 1 MiB rows: written and read a piece at a time, never whole in memory.
        create table ap_export_chunks (
            org_id uuid not null,
            batch_id uuid not null,
            chunk_no integer not null check (chunk_no >= 0),
            data bytea not null check (octet_length(data) between 1 and 1048576),
            primary key (batch_id, chunk_no),
            foreign key (org_id, batch_id) references ap_export_batches (org_id, id)
        );

        create table invoices (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            engagement_id uuid not null,
            kind text not null check (kind in ('milestone', 'retainage_release')),
            milestone_id uuid,
            review_id uuid,
            number bigint not null check (number > 0),
            invoice_number text not null,
            description text not null check (length(btrim(description)) between 1 and 500),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            gross_minor bigint not null check (gross_minor > 0),
            retainage_bps integer not null check (retainage_bps between 0 and 10000),
            retainage_minor bigint not null check (retainage_minor >= 0),
            net_minor bigint not null check (net_minor >= 0),
            fee_bps integer not null check (fee_bps between 0 and 10000),
            fee_minor bigint not null check (fee_minor >= 0),
            total_minor bigint not null,
            issued_on date not null,
            due_date date not null,
            status text not null default 'approved'
                check (status in ('approved', 'exported', 'paid', 'void', 'on_hold')),
            authorized_by uuid not null references users (id),
            authorized_at timestamptz not null default now(),
            release_reason text check (release_reason is null or length(btrim(release_reason)) between 1 and 2000),
            batch_id uuid,               -- the live AP export batch it is in
            exported_at timestamptz,
            paid_at date,                -- the day it was paid (from the payment record)
            updated_at timestamptz not null default now(),
            foreign key (org_id, contractor_id, engagement_id) references engagements (org_id, contractor_id, id),
            foreign key (org_id, contractor_id, milestone_id) references milestones (org_id, contractor_id, id),
            foreign key (org_id, contractor_id, review_id) references reviews (org_id, contractor_id, id),
            -- batch_id has no foreign key on purpose: the only way it is set is approved -> exported, where
            -- invoices_move_guard checks the batch exists, is live and was written in the same transaction.
            -- A foreign key would run one lookup per row on top, in every 100,000-row export.
            unique (org_id, contractor_id, id),
            unique (org_id, id),
            unique (org_id, number),
            unique (org_id, invoice_number),
            -- pay-once, whatever the code does: one milestone invoice per milestone, one per review
            constraint invoices_one_per_milestone unique (milestone_id),
            constraint invoices_one_per_review unique (review_id),
            constraint invoices_amounts_add_up
                check (net_minor = gross_minor - retainage_minor and total_minor = gross_minor + fee_minor),
            constraint invoices_paid_has_paid_at check ((status = 'paid') = (paid_at is not null)),
            constraint invoices_exported_has_batch check (status <> 'exported' or batch_id is not null),
            constraint invoices_batch_only_when_exported check (batch_id is null or status in ('exported', 'paid')),
            check (due_date >= issued_on),
            constraint invoices_kind_shape check (
                (kind = 'milestone' and milestone_id is not null and review_id is not null and release_reason is null)
                or (kind = 'retainage_release' and milestone_id is null and review_id is null
                    and retainage_minor = 0 and fee_minor = 0))
        );
        create unique index invoices_one_release_per_engagement on invoices (engagement_id) where kind = 'retainage_release';
        -- No index covers the columns an export or a payment changes (status, batch_id, exported_at,
        -- paid_at), and pages keep half their room free, so those updates are HOT: no index entries are
        -- rewritten. Measured on 100,000 invoices (bench/ap_export.py): 0.5 s for the update instead of
        -- 6 s with status in the queue's index and the default fill factor.
        alter table invoices set (fillfactor = 50);
        -- the payment queue: by due date (the status filter reads the heap; open invoices dominate it)
        create index invoices_org_due_idx on invoices (org_id, due_date, number);
        create index invoices_org_engagement_idx on invoices (org_id, engagement_id);
        create index invoices_org_contractor_idx on invoices (org_id, contractor_id, issued_on desc);

        create table payments (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            invoice_id uuid not null,
            amount_minor bigint not null check (amount_minor >= 0),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            paid_at date not null,
            reference text not null check (length(btrim(reference)) between 1 and 200),
            method text not null check (method in ('ach', 'wire', 'check', 'card', 'other')),
            source text not null check (source in ('manual', 'batch', 'remittance')),
            batch_id uuid,
            recorded_by uuid not null references users (id),
            recorded_at timestamptz not null default now(),
            foreign key (org_id, contractor_id, invoice_id) references invoices (org_id, contractor_id, id),
            foreign key (org_id, batch_id) references ap_export_batches (org_id, id),
            constraint payments_one_per_invoice unique (invoice_id),
            unique (org_id, contractor_id, id)
        );
        create index payments_org_paid_idx on payments (org_id, paid_at desc);
        create index payments_org_contractor_idx on payments (org_id, contractor_id);

        -- Double entry: every money event writes lines (debits positive, credits negative) under one
        -- txn_id that sum to zero (checked at commit).
        create table ledger_entries (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            txn_id uuid not null,
            event text not null check (event in ('authorized', 'retainage_released', 'paid')),
            invoice_id uuid not null,
            account text not null check (account in ('work_expense', 'accounts_payable', 'retainage_payable',
                                                    'service_fee_expense', 'service_fees_payable', 'cash')),
            amount_minor bigint not null check (amount_minor <> 0),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            created_at timestamptz not null default now(),
            foreign key (org_id, invoice_id) references invoices (org_id, id)
        );
        create index ledger_entries_org_txn_idx on ledger_entries (org_id, txn_id);
        create index ledger_entries_org_invoice_idx on ledger_entries (org_id, invoice_id);
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    op.execute(
        """
        drop table if exists ledger_entries, payments, invoices, ap_export_chunks, ap_export_batches, org_counters cascade;
        alter table organizations drop column if exists invoice_prefix, drop column if exists segregation_of_duties,
            drop column if exists ap_expense_account, drop column if exists ap_export_date_format,
            drop constraint if exists organizations_ap_export_columns_count;
        """
    )
