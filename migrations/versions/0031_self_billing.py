"""Self-billed e-invoices: profiles, the self-billing agreement, the contractor's acceptance (issue 21).

Revision ID: 0031_self_billing
Revises: 0030_completion_billing

DESIGN.md section 7b; the rules are in backoffice/domain/einvoice.py and backoffice/domain/self_billing.py.

``einvoice_profiles``: what an e-invoice says of a party. One row for the organization (``contractor_id`` null,
the buyer) and one per contractor (the seller): legal name, address with country code, VAT or other tax id, an
optional Peppol endpoint, and the contractor's VAT category and rate.

``self_billing_agreements``: the prior agreement EU VAT Directive art. 224 wants with each contractor, recorded by an
admin (date, terms) and confirmed by the contractor's user; the latest recorded is the one in force.

``invoice_acceptances``: the contractor's answer to each self-billed invoice (accepted, or rejected with a reason);
silence for ``organizations.acceptance_days`` after the self-billed invoice was issued counts as acceptance, and
an organization with ``acceptance_required`` pays nothing not yet accepted.

``documents``: the PDF made at authorization is the self-billed invoice (kind ``self_billed_invoice``, formerly
``receipt``; the rows keep their bytes, titles and file names as issued), beside its UBL (``einvoice``) and, when
the authorization is voided after issue, the UBL credit note (``credit_note``). One of each kind per invoice.
Policies, grants and guards: sql/self_billing.sql.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0031_self_billing"
down_revision = "0030_completion_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        alter table organizations
            add column if not exists acceptance_days integer not null default 14
                check (acceptance_days between 1 and 90),
            add column if not exists acceptance_required boolean not null default false;

        create table if not exists einvoice_profiles (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            contractor_id uuid,
            legal_name text not null default '' check (length(legal_name) <= 200),
            street text not null default '' check (length(street) <= 200),
            city text not null default '' check (length(city) <= 100),
            postal_code text not null default '' check (length(postal_code) <= 20),
            country text not null default '' check (country ~ '^([A-Z]{2})?$'),
            tax_id text not null default '' check (tax_id ~ '^[A-Za-z0-9.\\-/ ]{0,40}$'),
            tax_scheme text not null default 'VAT' check (tax_scheme in ('VAT', 'TAX')),
            endpoint_scheme text not null default '' check (endpoint_scheme ~ '^([0-9]{4})?$'),
            endpoint_id text not null default '' check (endpoint_id ~ '^[A-Za-z0-9.\\:_\\-]{0,100}$'),
            vat_category text not null default '' check (vat_category in ('', 'S', 'Z', 'E', 'AE', 'O')),
            vat_bps integer not null default 0 check (vat_bps between 0 and 10000),
            updated_by uuid not null references users (id),
            updated_at timestamptz not null default now(),
            primary key (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            constraint einvoice_profiles_vat_is_the_sellers check (contractor_id is not null or
                (vat_category = '' and vat_bps = 0)),
            -- domain.einvoice.vat_rate_problem: only the standard rate charges VAT, at above 0%
            constraint einvoice_profiles_vat_rate check (case vat_category
                when 'S' then vat_bps between 1 and 10000 else vat_bps = 0 end)
        );
        create unique index if not exists einvoice_profiles_one_per_party
            on einvoice_profiles (org_id, contractor_id) nulls not distinct;

        create table if not exists self_billing_agreements (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            contractor_id uuid not null,
            agreed_on date not null,
            terms text not null check (length(btrim(terms)) between 1 and 20000),
            recorded_by uuid not null references users (id),
            recorded_at timestamptz not null default now(),
            confirmed_by uuid references users (id),
            confirmed_at timestamptz,
            primary key (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check (num_nulls(confirmed_by, confirmed_at) in (0, 2))
        );
        create index if not exists self_billing_agreements_contractor
            on self_billing_agreements (org_id, contractor_id, recorded_at desc, id desc);

        create table if not exists invoice_acceptances (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            invoice_id uuid not null,
            contractor_id uuid not null,
            decision text not null check (decision in ('accepted', 'rejected')),
            reason text check (length(btrim(reason)) between 1 and 1000),
            decided_by uuid not null references users (id),
            decided_at timestamptz not null default now(),
            primary key (org_id, id),
            foreign key (org_id, invoice_id) references invoices (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check ((decision = 'rejected') = (reason is not null))
        );
        create index if not exists invoice_acceptances_invoice
            on invoice_acceptances (org_id, invoice_id, decided_at desc, id desc);
        create unique index if not exists invoice_acceptances_accepted_once
            on invoice_acceptances (org_id, invoice_id) where decision = 'accepted';

        -- The PDF made at authorization is the self-billed invoice. Documents are append-only
        -- (sql/append_only.sql): the owner lifts the trigger by name for this transaction to rename the kind
        -- of the rows issued before; their bytes, titles and file names stay as issued.
        alter table documents drop constraint if exists documents_kind_check;
        alter table documents drop constraint if exists documents_kind_shape;
        -- What a self-billed invoice settled when it was issued, kept with it: the VAT it states (its e-invoice,
        -- issued later, states the same; so does a credit note), and the days of silence that make it accepted
        -- (the organization's setting then: changing the setting later changes no invoice already issued).
        alter table documents
            add column if not exists vat_category text check (vat_category in ('', 'S', 'Z', 'E', 'AE', 'O')),
            add column if not exists vat_bps integer check (vat_bps between 0 and 10000),
            add column if not exists acceptance_days integer check (acceptance_days between 1 and 90);
        alter table documents disable trigger documents_append_only;
        -- Issued before this revision: they stated no VAT, and silence counts by the organization's setting now.
        update documents d set kind = 'self_billed_invoice', vat_category = '', vat_bps = 0,
                               acceptance_days = (select g.acceptance_days from organizations g where g.id = d.org_id)
         where kind = 'receipt';
        alter table documents enable trigger documents_append_only;
        alter table documents add constraint documents_kind_check
            check (kind in ('self_billed_invoice', 'einvoice', 'credit_note', 'remittance_advice'));
        alter table documents add constraint documents_kind_shape check (case kind
            when 'remittance_advice' then run_id is not null and invoice_id is null and engagement_id is null
            else invoice_id is not null and engagement_id is not null and run_id is null end);
        alter table documents add constraint documents_content_type check (content_type = case
            when kind in ('einvoice', 'credit_note') then 'application/xml' else 'application/pdf' end);
        drop index if exists documents_one_receipt_per_invoice;
        create unique index if not exists documents_one_of_a_kind_per_invoice
            on documents (org_id, invoice_id, kind) where invoice_id is not null;
        create index if not exists documents_by_sha256 on documents (sha256);
        alter table documents drop constraint if exists documents_self_billed_terms;
        alter table documents add constraint documents_self_billed_terms check (
            (kind = 'self_billed_invoice') = (acceptance_days is not null and vat_category is not null
                                              and vat_bps is not null));
        -- Contractors now read their own contractor's documents of every kind (sql/data_room.sql): an invoice's
        -- documents are its contractor's, which the database holds rather than trusts.
        create unique index if not exists invoices_contractor_key on invoices (org_id, id, contractor_id);
        alter table documents drop constraint if exists documents_invoice_contractor_fkey;
        alter table documents add constraint documents_invoice_contractor_fkey
            foreign key (org_id, invoice_id, contractor_id) references invoices (org_id, id, contractor_id);
        -- A contractor's home lists its self-billed invoices awaiting an answer (queries/self_billing.to_answer).
        create index if not exists documents_self_billed_by_contractor
            on documents (org_id, contractor_id, issued_at) where kind = 'self_billed_invoice';
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop index if exists documents_by_sha256;
        drop index if exists documents_self_billed_by_contractor;
        alter table documents drop constraint if exists documents_invoice_contractor_fkey;
        drop index if exists invoices_contractor_key;
        alter table documents drop constraint if exists documents_self_billed_terms,
            drop column if exists vat_category, drop column if exists vat_bps, drop column if exists acceptance_days;
        alter table documents disable trigger documents_append_only;
        delete from documents where kind in ('einvoice', 'credit_note');
        update documents set kind = 'receipt' where kind = 'self_billed_invoice';
        alter table documents enable trigger documents_append_only;
        drop index if exists documents_one_of_a_kind_per_invoice;
        create unique index if not exists documents_one_receipt_per_invoice
            on documents (org_id, invoice_id) where kind = 'receipt';
        alter table documents drop constraint if exists documents_content_type,
            drop constraint if exists documents_kind_shape, drop constraint if exists documents_kind_check;
        alter table documents add constraint documents_kind_check check (kind in ('receipt', 'remittance_advice'));
        alter table documents add constraint documents_kind_shape check (case kind
            when 'receipt' then invoice_id is not null and engagement_id is not null and run_id is null
            else run_id is not null and invoice_id is null and engagement_id is null end);
        drop table if exists invoice_acceptances;
        drop table if exists self_billing_agreements;
        drop table if exists einvoice_profiles;
        alter table organizations drop column if exists acceptance_required, drop column if exists acceptance_days;
    """)
    apply_rls_policies()
