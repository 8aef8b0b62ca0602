"""Pages whose cost does not grow with the organization (issue 23, item 2).

Revision ID: 0014_page_speed
Revises: 0013_export_speed

Three derived tables, kept by statement-level triggers on invoices (sql/money.sql: invoices_totals_apply)
from the transition tables of each INSERT, UPDATE and DELETE, so a page reads a few rows instead of
aggregating every invoice of the organization:

- ``invoice_totals``: count and net per (status, currency, due date), what the payment queue's totals and
  overdue count sum (one row per day an invoice falls due, not one per invoice);
- ``ap_batch_paid``: how many of a batch's invoices are paid, what the batches list shows;
- ``retainage_totals``: retainage withheld and released per engagement, what the retainage report and a
  contractor's payments page sum.

They are derived data: tests/integration/test_derived_totals.py recomputes each from the invoices after
random sequences of approvals, exports, voids and payments and compares. This revision fills them from the
invoices already there.

Two indexes match the order pages walk: the review queue's submitted milestones by when they were last
moved (the submission's own transaction: now()), the data room's documents by (issued_at, id), and the
retainage report's engagements by retainage held.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0014_page_speed"
down_revision = "0013_export_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Idempotent, like every revision since 0011: tests/integration/test_least_privilege.py upgrades a database
    # put back to revision 0010 by hand, tables and all.
    op.execute("""
        create table if not exists invoice_totals (
            org_id uuid not null references organizations (id),
            status text not null,
            currency text not null,
            due_date date not null,
            invoices bigint not null,
            net_minor bigint not null,
            primary key (org_id, status, currency, due_date)
        );
        create table if not exists ap_batch_paid (
            org_id uuid not null,
            batch_id uuid not null,
            invoices bigint not null,
            primary key (org_id, batch_id),
            foreign key (org_id, batch_id) references ap_export_batches (org_id, id)
        );
        create table if not exists retainage_totals (
            org_id uuid not null,
            contractor_id uuid not null,
            engagement_id uuid not null,
            currency text not null,
            withheld_minor bigint not null,
            released_minor bigint not null,
            primary key (org_id, engagement_id),
            foreign key (org_id, contractor_id, engagement_id) references engagements (org_id, contractor_id, id)
        );
        create index if not exists retainage_totals_contractor_idx on retainage_totals (org_id, contractor_id);
        create index if not exists retainage_totals_held_idx on retainage_totals (org_id, (withheld_minor - released_minor), engagement_id)
          where withheld_minor > 0;

        create index if not exists milestones_review_queue_idx on milestones (org_id, updated_at, id) where status = 'submitted';
        drop index if exists documents_data_room;
        create index documents_data_room on documents (org_id, issued_at desc, id);
    """)
    apply_rls_policies()
    op.execute("select rebuild_invoice_totals()")  # (sql/money.sql) from the invoices already there


def downgrade() -> None:
    op.execute("""
        drop index documents_data_room;
        create index documents_data_room on documents (org_id, issued_at desc);
        drop index milestones_review_queue_idx;
        drop function if exists invoices_totals_apply() cascade;
        drop function if exists rebuild_invoice_totals();
        drop table retainage_totals, ap_batch_paid, invoice_totals;
    """)
