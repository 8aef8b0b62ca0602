"""Tax forms and the 1099-NEC year end (issue 18, items 5 and 6).

Revision ID: 0028_tax_profiles
Revises: 0027_approval_controls

``organizations.tax_form_required``: an admin's setting; while on, a contractor without a complete tax form is
neither exported nor paid (sql/tax.sql refuses the moves).

``tax_profiles``: a contractor's tax form, one per contractor, filled in by its own user: a W-9 (US person) or a
W-8BEN / W-8BEN-E (foreign: no 1099). Its TIN is not here: only its type and last four digits, which the database
copies from the TIN row the profile points to.

``tax_tins``: each TIN a contractor's user entered, encrypted by the server (AES-GCM, the organization's id as
associated data; the key is the server's, never the database's). Append-only; finance and admins read them (the
year-end export decrypts them), nobody else, not even the contractor that wrote one.

``tax_year_filings``: each 1099-NEC export of a calendar year: the file as written (bytes and sha256, re-downloaded
byte-identical), its totals per contractor, who exported it; at most one that is not reopened per year (the lock),
reopened with a reason. Policies, grants and guards: sql/tax.sql.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0028_tax_profiles"
down_revision = "0027_approval_controls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        alter table organizations add column if not exists tax_form_required boolean not null default false;

        create table if not exists tax_tins (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            contractor_id uuid not null,
            tin_type text not null check (tin_type in ('ssn', 'ein')),
            ciphertext bytea not null check (length(ciphertext) between 29 and 256),
            last4 text not null check (last4 ~ '^[0-9]{4}$'),
            entered_by uuid not null references users (id),
            entered_at timestamptz not null default now(),
            primary key (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id)
        );
        create index if not exists tax_tins_contractor_idx on tax_tins (org_id, contractor_id);

        create table if not exists tax_profiles (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            contractor_id uuid not null,
            kind text not null check (kind in ('w9', 'w8ben', 'w8ben_e')),
            name text not null default '' check (length(name) <= 200),
            business_name text not null default '' check (length(business_name) <= 200),
            classification text not null default '' check (classification in ('', 'individual', 'c_corporation',
                's_corporation', 'partnership', 'trust_estate', 'llc_c', 'llc_s', 'llc_p', 'other')),
            tin_id uuid,
            tin_type text check (tin_type in ('ssn', 'ein')),
            tin_last4 text check (tin_last4 ~ '^[0-9]{4}$'),
            address_line1 text not null default '' check (length(address_line1) <= 200),
            address_line2 text not null default '' check (length(address_line2) <= 200),
            city text not null default '' check (length(city) <= 100),
            region text not null default '' check (length(region) <= 100),
            postal_code text not null default '' check (length(postal_code) <= 20),
            country text not null default '' check (country ~ '^([A-Z]{2})?$'),
            certified_by uuid not null references users (id),
            certified_at timestamptz not null default now(),
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            primary key (org_id, id),
            unique (org_id, contractor_id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            foreign key (org_id, tin_id) references tax_tins (org_id, id),
            check (num_nulls(tin_id, tin_type, tin_last4) in (0, 3)),
            check (kind = 'w9' or (tin_id is null and classification = ''))
        );

        create table if not exists tax_year_filings (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            year integer not null check (year between 2020 and 2200),
            filename text not null check (filename ~ '^[A-Za-z0-9._-]{1,120}$'),
            content bytea not null,
            size_bytes integer not null check (size_bytes >= 0),
            sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
            threshold_minor bigint not null check (threshold_minor > 0),
            row_count integer not null check (row_count >= 0),
            total_minor bigint not null check (total_minor >= 0),
            totals jsonb not null,
            exported_by uuid not null references users (id),
            exported_at timestamptz not null default now(),
            reopened_by uuid references users (id),
            reopened_at timestamptz,
            reopen_reason text check (length(btrim(reopen_reason)) between 1 and 1000),
            primary key (org_id, id),
            check (num_nulls(reopened_by, reopened_at, reopen_reason) in (0, 3))
        );
        create unique index if not exists tax_year_filings_locked on tax_year_filings (org_id, year)
            where reopened_at is null;
        create index if not exists tax_year_filings_year_idx on tax_year_filings (org_id, year, exported_at desc);

        -- The year end sums a year's payments per contractor by payment date.
        create index if not exists payments_paid_on_idx on payments (org_id, paid_at);
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop table if exists tax_year_filings;
        drop table if exists tax_profiles;
        drop table if exists tax_tins;
        drop index if exists payments_paid_on_idx;
        alter table organizations drop column if exists tax_form_required;
    """)
