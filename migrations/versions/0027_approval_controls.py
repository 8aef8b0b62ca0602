"""Payment controls (issue 18): approval policies and their steps, each invoice's approvals, delegations, holds.

Revision ID: 0027_approval_controls
Revises: 0026_rail_reconciliation

``approval_policies`` + ``approval_policy_steps``: an organization's rule "a payment of at least this amount, in
this currency, needs these approvals, in order"; each step is "any one of" a role or named members. A policy is
never deleted, only switched off (``archived_at``): invoices name the policy they started under.

``invoice_approvals``: the steps an invoice must pass, copied from its policy when it is authorized (so changing
the policy later does not change what is pending), each waiting, approved or rejected, by whom, for whom
(delegation) and when. An approver appears once per invoice.

``approval_delegations``: an approver's stand-in for a date range.

``holds``: finance holding an invoice or a whole contractor, with the reason, and its release.

``invoices``: ``pending_approval`` joins the statuses; ``approval_policy_id`` names the policy it started under;
``voided_at`` marks an authorization voided by a rejected step. Pay-once per milestone and per engagement's release
now counts live (not voided) invoices: a rejected milestone goes back to the contractor and its next approval
authorizes it anew. The unique indexes' predicate is ``voided_at`` (set once, by the void), not ``status``: an
index over ``status`` would make every export's and payment's update non-HOT (bench/ap_export.py).
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0027_approval_controls"
down_revision = "0026_rail_reconciliation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        create table if not exists approval_policies (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            name text not null check (length(btrim(name)) between 1 and 200),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            min_amount_minor bigint not null check (min_amount_minor > 0),
            created_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            archived_at timestamptz,
            archived_by uuid references users (id),
            primary key (org_id, id),
            check ((archived_at is null) = (archived_by is null))
        );
        create unique index if not exists approval_policies_one_per_amount
            on approval_policies (org_id, currency, min_amount_minor) where archived_at is null;

        create table if not exists approval_policy_steps (
            org_id uuid not null,
            policy_id uuid not null,
            step integer not null check (step between 1 and 10),
            approver_role text check (approver_role in ('admin', 'owner', 'finance')),
            approver_ids uuid[] not null default '{}',
            primary key (org_id, policy_id, step),
            foreign key (org_id, policy_id) references approval_policies (org_id, id),
            check ((approver_role is null) <> (cardinality(approver_ids) = 0)),
            check (cardinality(approver_ids) <= 20)
        );

        alter table invoices add column if not exists approval_policy_id uuid;
        alter table invoices add column if not exists voided_at timestamptz;
        alter table invoices drop constraint if exists invoices_status_check;
        alter table invoices add constraint invoices_status_check
            check (status in ('pending_approval', 'approved', 'exported', 'paid', 'void', 'on_hold'));
        alter table invoices drop constraint if exists invoices_void_has_voided_at;
        alter table invoices add constraint invoices_void_has_voided_at check ((status = 'void') = (voided_at is not null));
        do $$
        begin
          if exists (select 1 from pg_constraint where conname = 'invoices_one_per_milestone') then
            alter table invoices drop constraint invoices_one_per_milestone;
          end if;
        end
        $$;
        create unique index if not exists invoices_one_per_milestone on invoices (org_id, milestone_id)
            where voided_at is null;
        -- Rebuilt after it, so that a second invoice for a milestone is refused by name as one per milestone
        -- first (unique indexes are checked in the order they were made), as before.
        alter table invoices drop constraint if exists invoices_one_per_review;
        alter table invoices add constraint invoices_one_per_review unique (org_id, review_id);
        drop index if exists invoices_one_release_per_engagement;
        create unique index invoices_one_release_per_engagement on invoices (org_id, engagement_id)
            where kind = 'retainage_release' and voided_at is null;

        alter table ledger_entries drop constraint if exists ledger_entries_event_check;
        alter table ledger_entries add constraint ledger_entries_event_check
            check (event in ('authorized', 'retainage_released', 'paid', 'reversed', 'authorization_voided'));

        create table if not exists invoice_approvals (
            org_id uuid not null,
            invoice_id uuid not null,
            step integer not null check (step between 1 and 10),
            policy_id uuid not null,
            approver_role text check (approver_role in ('admin', 'owner', 'finance')),
            approver_ids uuid[] not null default '{}',
            status text not null default 'waiting' check (status in ('waiting', 'approved', 'rejected')),
            decided_by uuid references users (id),
            on_behalf_of uuid references users (id),
            decided_at timestamptz,
            reason text check (reason is null or length(btrim(reason)) between 1 and 2000),
            created_at timestamptz not null default now(),
            reminded_at timestamptz,
            primary key (org_id, invoice_id, step),
            foreign key (org_id, invoice_id) references invoices (org_id, id),
            foreign key (org_id, policy_id) references approval_policies (org_id, id),
            check ((approver_role is null) <> (cardinality(approver_ids) = 0)),
            check ((status = 'waiting') = (decided_by is null and decided_at is null)),
            check (status <> 'rejected' or reason is not null),
            check (on_behalf_of is null or on_behalf_of <> decided_by)
        );
        -- An approver appears once per invoice (whoever they decided for).
        create unique index if not exists invoice_approvals_one_per_person
            on invoice_approvals (org_id, invoice_id, decided_by) where decided_by is not null;
        -- The approvals queue: what waits, oldest first.
        create index if not exists invoice_approvals_waiting_idx
            on invoice_approvals (org_id, created_at, invoice_id) where status = 'waiting';

        create table if not exists approval_delegations (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            user_id uuid not null references users (id),
            delegate_id uuid not null references users (id),
            starts_on date not null,
            ends_on date not null,
            created_at timestamptz not null default now(),
            revoked_at timestamptz,
            primary key (org_id, id),
            check (user_id <> delegate_id),
            check (ends_on >= starts_on and ends_on - starts_on <= 366)
        );
        create index if not exists approval_delegations_delegate_idx
            on approval_delegations (org_id, delegate_id, ends_on) where revoked_at is null;

        create table if not exists holds (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            invoice_id uuid,
            contractor_id uuid,
            reason text not null check (length(btrim(reason)) between 1 and 2000),
            held_by uuid not null references users (id),
            held_at timestamptz not null default now(),
            released_by uuid references users (id),
            released_at timestamptz,
            release_note text check (release_note is null or length(btrim(release_note)) between 1 and 2000),
            primary key (org_id, id),
            foreign key (org_id, invoice_id) references invoices (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check (num_nonnulls(invoice_id, contractor_id) = 1),
            check ((released_at is null) = (released_by is null)),
            check (release_note is null or released_at is not null)
        );
        -- One live hold per invoice and per contractor; the guards ask for a live one by either.
        create unique index if not exists holds_live_invoice on holds (org_id, invoice_id)
            where released_at is null and invoice_id is not null;
        create unique index if not exists holds_live_contractor on holds (org_id, contractor_id)
            where released_at is null and contractor_id is not null;
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop table if exists holds;
        drop table if exists approval_delegations;
        drop table if exists invoice_approvals;
        drop index if exists invoices_one_per_milestone;
        drop index if exists invoices_one_release_per_engagement;
        create unique index invoices_one_release_per_engagement on invoices (org_id, engagement_id)
            where kind = 'retainage_release';
        alter table invoices add constraint invoices_one_per_milestone unique (org_id, milestone_id);
        alter table invoices drop constraint if exists invoices_void_has_voided_at;
        alter table invoices drop constraint if exists invoices_status_check;
        alter table invoices add constraint invoices_status_check
            check (status in ('approved', 'exported', 'paid', 'void', 'on_hold'));
        alter table invoices drop column if exists voided_at;
        alter table invoices drop column if exists approval_policy_id;
        drop table if exists approval_policy_steps;
        drop table if exists approval_policies;
    """)
