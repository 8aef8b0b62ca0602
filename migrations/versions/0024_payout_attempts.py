"""Paying by Stripe: payout attempts, reversible payments, payment runs, automatic payment (issue 17, items 3-7).

Revision ID: 0024_payout_attempts
Revises: 0023_rail_events

``payout_attempts`` records each call to a payment rail for an invoice: its organization and id make the
idempotency key the transfer is made with, so a retry (a timeout, a worker killed after Stripe accepted) gets the same transfer back.
At most one attempt per invoice is in flight or succeeded (a partial unique index); a refused one leaves the
invoice on hold with Stripe's reason, a reversed one follows its payment.

Payments become reversible (``transfer.reversed``): ``reversed_at`` and the reversal's reference, set once by
the worker. Pay-once is now "at most one payment that stands per invoice, whatever the rail": the unique
constraint ``payments_one_per_invoice`` becomes a unique index of the same name over the payments not reversed.
Each payment names its payment run (``run_id``: one manual payment, one batch's payments, one remittance file,
one Stripe run), which the remittance advice is per. Methods and sources gain ``stripe``; the ledger gains the
``reversed`` event.

An invoice handed to a rail is ``exported`` with no batch (DESIGN.md section 3): the constraint that an exported
invoice names a batch moves into the invoice guards, which accept either a live batch or an attempt in flight.

Organizations get "pay automatically on the due date" and who turned it on, in whose name such payments go.
Guards, policies and grants: sql/rails.sql and sql/money.sql.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0024_payout_attempts"
down_revision = "0023_rail_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        alter table organizations add column if not exists auto_pay_enabled boolean not null default false;
        alter table organizations add column if not exists auto_pay_by uuid references users (id);
        alter table organizations drop constraint if exists organizations_auto_pay_by_someone;
        alter table organizations add constraint organizations_auto_pay_by_someone
            check (not auto_pay_enabled or auto_pay_by is not null);

        alter table payments add column if not exists run_id uuid;
        update payments set run_id = id where run_id is null;
        alter table payments alter column run_id set not null, alter column run_id set default gen_random_uuid();
        alter table payments add column if not exists reversed_at timestamptz;
        alter table payments add column if not exists reversal_reference text;
        alter table payments drop constraint if exists payments_reversal_shape;
        alter table payments add constraint payments_reversal_shape check (
            (reversed_at is null) = (reversal_reference is null)
            and (reversal_reference is null or reversal_reference ~ '^trr_[A-Za-z0-9]{1,64}$'));
        alter table payments drop constraint if exists payments_method_check;
        alter table payments add constraint payments_method_check
            check (method in ('ach', 'wire', 'check', 'card', 'other', 'stripe'));
        alter table payments drop constraint if exists payments_source_check;
        alter table payments add constraint payments_source_check
            check (source in ('manual', 'batch', 'remittance', 'stripe'));
        alter table payments drop constraint if exists payments_stripe_shape;
        alter table payments add constraint payments_stripe_shape check (
            (source = 'stripe') = (method = 'stripe')
            and (source <> 'stripe' or reference ~ '^tr_[A-Za-z0-9]{1,64}$')
            and (reversed_at is null or source = 'stripe'));
        alter table payments drop constraint if exists payments_one_per_invoice;
        drop index if exists payments_one_per_invoice;
        create unique index payments_one_per_invoice on payments (org_id, invoice_id) where reversed_at is null;
        create index if not exists payments_org_run_idx on payments (org_id, run_id);

        alter table ledger_entries drop constraint if exists ledger_entries_event_check;
        alter table ledger_entries add constraint ledger_entries_event_check
            check (event in ('authorized', 'retainage_released', 'paid', 'reversed'));

        alter table invoices drop constraint if exists invoices_exported_has_batch;

        create table if not exists payout_attempts (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            run_id uuid not null,
            invoice_id uuid not null,
            contractor_id uuid not null,
            rail text not null check (rail in ('stripe')),
            destination text not null check (destination ~ '^acct_[A-Za-z0-9]{1,64}$'),
            amount_minor bigint not null check (amount_minor > 0),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            automatic boolean not null default false,
            status text not null default 'pending' check (status in ('pending', 'succeeded', 'refused', 'reversed')),
            transfer_id text check (transfer_id ~ '^tr_[A-Za-z0-9]{1,64}$'),
            payment_id uuid,
            failure_code text check (failure_code ~ '^[a-z0-9_]{1,100}$'),
            failure_words text check (length(btrim(failure_words)) between 1 and 1000),
            tries integer not null default 0 check (tries >= 0),
            requested_by uuid not null references users (id),
            requested_at timestamptz not null default now(),
            finished_at timestamptz,
            primary key (org_id, id),
            foreign key (org_id, contractor_id, invoice_id) references invoices (org_id, contractor_id, id),
            foreign key (org_id, payment_id) references payments (org_id, id),
            constraint payout_attempts_finished check ((status = 'pending') = (finished_at is null)),
            constraint payout_attempts_paid_shape check (
                (status in ('succeeded', 'reversed')) = (transfer_id is not null and payment_id is not null)),
            constraint payout_attempts_refused_shape check ((status = 'refused') = (failure_words is not null))
        );
        create unique index if not exists payout_attempts_one_live
            on payout_attempts (org_id, invoice_id) where status in ('pending', 'succeeded');
        create unique index if not exists payout_attempts_one_per_transfer
            on payout_attempts (org_id, transfer_id) where transfer_id is not null;
        create index if not exists payout_attempts_run_idx on payout_attempts (org_id, run_id);
        create index if not exists payout_attempts_pending_idx on payout_attempts (org_id, requested_at)
            where status = 'pending';
        create index if not exists payout_attempts_invoice_idx on payout_attempts (org_id, invoice_id, requested_at);
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop table if exists payout_attempts;
        drop index if exists payments_org_run_idx;
        drop index if exists payments_one_per_invoice;
        delete from payments where source = 'stripe';
        alter table payments add constraint payments_one_per_invoice unique (org_id, invoice_id);
        alter table payments drop constraint if exists payments_stripe_shape;
        alter table payments drop constraint if exists payments_reversal_shape;
        alter table payments drop column if exists run_id, drop column if exists reversed_at,
            drop column if exists reversal_reference;
        alter table organizations drop constraint if exists organizations_auto_pay_by_someone;
        alter table organizations drop column if exists auto_pay_enabled, drop column if exists auto_pay_by;
    """)
    apply_rls_policies()
