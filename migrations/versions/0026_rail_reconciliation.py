"""The daily reconciliation of a payment rail's transfers with the payments recorded here (issue 17, item 5).

Revision ID: 0026_rail_reconciliation
Revises: 0025_remittance_advice

``rail_reconciliations`` keeps each comparison the worker made for an organization: when it ran, whether it was
the daily run or one finance asked for, the window of Stripe transfers it listed, how many transfers and payments
it compared and how many findings it made. ``rail_reconciliation_findings`` keeps each finding in words finance
acts on, with what it is about (the transfer, the payment, the invoice, the payout attempt) and both amounts.
Written by the worker alone, read by finance and admins (sql/rails.sql); a contractor sees nothing of either.

``payments_reference_idx``: a run looks the payments of a page of Stripe transfers up by their reference.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0026_rail_reconciliation"
down_revision = "0025_remittance_advice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        create table if not exists rail_reconciliations (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            rail text not null check (rail in ('stripe')),
            requested boolean not null default false,
            started_at timestamptz not null,
            finished_at timestamptz not null default now(),
            window_from timestamptz not null,
            window_to timestamptz not null,
            transfers_compared integer not null check (transfers_compared >= 0),
            payments_compared integer not null check (payments_compared >= 0),
            findings integer not null check (findings >= 0),
            primary key (org_id, id),
            check (window_from < window_to and started_at <= finished_at)
        );
        create index if not exists rail_reconciliations_latest_idx
            on rail_reconciliations (org_id, rail, started_at desc);

        create table if not exists rail_reconciliation_findings (
            org_id uuid not null,
            id uuid not null default gen_random_uuid(),
            reconciliation_id uuid not null,
            seq integer not null check (seq >= 1),
            kind text not null check (kind in ('transfer_without_payment', 'payment_without_transfer',
                                               'amount_differs', 'reversal_differs', 'attempt_in_flight')),
            transfer_id text check (transfer_id ~ '^tr_[A-Za-z0-9]{1,64}$'),
            payment_id uuid,
            invoice_id uuid,
            attempt_id uuid,
            currency text check (currency ~ '^[A-Z]{3}$'),
            stripe_amount_minor bigint,
            recorded_amount_minor bigint,
            words text not null check (length(btrim(words)) between 1 and 2000),
            primary key (org_id, id),
            unique (org_id, reconciliation_id, seq),
            foreign key (org_id, reconciliation_id) references rail_reconciliations (org_id, id),
            foreign key (org_id, payment_id) references payments (org_id, id),
            foreign key (org_id, invoice_id) references invoices (org_id, id),
            foreign key (org_id, attempt_id) references payout_attempts (org_id, id)
        );

        create index if not exists payments_reference_idx on payments (org_id, reference);
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop table if exists rail_reconciliation_findings;
        drop table if exists rail_reconciliations;
        drop index if exists payments_reference_idx;
    """)
