"""Remittance advice: one PDF per payment run and contractor, in the data room, readable by its contractor (issue 17,
item 7).

Revision ID: 0025_remittance_advice
Revises: 0024_payout_attempts

``documents`` gets a second kind, ``remittance_advice``: what one payment run (``payments.run_id``: one manual
payment, one batch's payments, one remittance file, one Stripe run) paid one contractor. It names its run
(``run_id``) and contractor, and no invoice or engagement (a run pays several of each); a receipt keeps naming its
invoice and engagement and names no run (``documents_kind_shape``). One advice per (run, contractor): a unique
index, which the issuing job's insert relies on. The contractor a document names is now a foreign key, since it
says whose the document is: the contractor's users read their own remittance advices, and no other document
(sql/data_room.sql); a contractor's list walks its own index.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0025_remittance_advice"
down_revision = "0024_payout_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        alter table documents add column if not exists run_id uuid;
        alter table documents alter column invoice_id drop not null, alter column engagement_id drop not null;
        alter table documents drop constraint if exists documents_kind_check;
        alter table documents add constraint documents_kind_check check (kind in ('receipt', 'remittance_advice'));
        alter table documents drop constraint if exists documents_kind_shape;
        alter table documents add constraint documents_kind_shape check (case kind
            when 'receipt' then invoice_id is not null and engagement_id is not null and run_id is null
            else run_id is not null and invoice_id is null and engagement_id is null end);
        alter table documents drop constraint if exists documents_org_id_contractor_id_fkey;
        alter table documents add constraint documents_org_id_contractor_id_fkey
            foreign key (org_id, contractor_id) references contractors (org_id, id);
        create unique index if not exists documents_one_remittance_advice_per_run
            on documents (org_id, run_id, contractor_id) where kind = 'remittance_advice';
        create index if not exists documents_contractor_remittance_advices
            on documents (org_id, contractor_id, issued_at desc, id) where kind = 'remittance_advice';
    """)
    apply_rls_policies()


def downgrade() -> None:
    # Documents are append-only (sql/append_only.sql): the owner lifts the trigger by name for this transaction.
    op.execute("""
        alter table documents disable trigger documents_append_only;
        delete from documents where kind <> 'receipt';
        alter table documents enable trigger documents_append_only;
        drop index if exists documents_contractor_remittance_advices;
        drop index if exists documents_one_remittance_advice_per_run;
        alter table documents drop constraint if exists documents_org_id_contractor_id_fkey,
            drop constraint if exists documents_kind_shape, drop constraint if exists documents_kind_check;
        alter table documents add constraint documents_kind_check check (kind = 'receipt');
        alter table documents alter column invoice_id set not null, alter column engagement_id set not null,
            drop column if exists run_id;
    """)
    apply_rls_policies()
