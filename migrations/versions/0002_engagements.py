"""Engagements, milestones and change orders (with their lines).

Revision ID: 0002_engagements
Revises: 0001_foundation

contractor_id is carried from the engagement onto every row below it and kept consistent by composite
foreign keys, so the contractor's RLS policy stays one indexed comparison (DESIGN.md section 5).
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0002_engagements"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table engagements (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            contractor_id uuid not null,
            owner_user_id uuid not null references users (id),
            title text not null check (length(btrim(title)) between 1 and 200),
            sow_reference text check (sow_reference is null or length(btrim(sow_reference)) between 1 and 100),
            currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
            retainage_bps integer not null check (retainage_bps between 0 and 10000),
            payment_terms_days integer not null check (payment_terms_days between 0 and 365),
            service_fee_bps integer not null default 0 check (service_fee_bps between 0 and 10000),
            billing_mode text not null default 'milestone' check (billing_mode in ('milestone', 'completion')),
            status text not null default 'draft' check (status in
                ('draft', 'awaiting_acceptance', 'active', 'paused', 'completed', 'declined', 'cancelled')),
            created_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            sent_at timestamptz,
            sent_by uuid references users (id),
            responded_at timestamptz,      -- the contractor accepted or declined
            responded_by uuid references users (id),
            decline_reason text check (decline_reason is null or length(decline_reason) <= 2000),
            completed_at timestamptz,
            cancelled_at timestamptz,
            cancel_reason text check (cancel_reason is null or length(cancel_reason) <= 2000),
            unique (org_id, contractor_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check (status in ('draft', 'cancelled') or sent_at is not null),
            check (status not in ('active', 'paused', 'completed', 'declined') or responded_at is not null),
            check (status <> 'completed' or completed_at is not null),
            check (status <> 'cancelled' or cancelled_at is not null)
        );
        create index engagements_org_created_idx on engagements (org_id, created_at desc, id);
        create index engagements_org_contractor_idx on engagements (org_id, contractor_id);
        create index engagements_org_owner_idx on engagements (org_id, owner_user_id);

        create table milestones (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            engagement_id uuid not null,
            seq integer not null check (seq > 0),
            title text not null check (length(btrim(title)) between 1 and 200),
            deliverable text not null default '' check (length(deliverable) <= 4000),
            amount_minor bigint not null check (amount_minor > 0 and amount_minor <= 1000000000000000),
            due_date date not null check (due_date between '2000-01-01' and '2100-12-31'),
            status text not null default 'planned' check (status in ('planned', 'submitted', 'approved', 'cancelled')),
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            -- cascades so a draft's contractor can still be corrected (the guard freezes it after sending)
            foreign key (org_id, contractor_id, engagement_id) references engagements (org_id, contractor_id, id)
                on update cascade,
            unique (org_id, contractor_id, id),
            -- deferred so a reorder can swap positions inside one transaction
            constraint milestones_engagement_seq_key unique (engagement_id, seq) deferrable initially deferred
        );
        create index milestones_org_engagement_seq_idx on milestones (org_id, engagement_id, seq);
        create index milestones_org_contractor_idx on milestones (org_id, contractor_id);
        -- the organization's open milestones, soonest due first (the "Due" page)
        create index milestones_org_due_idx on milestones (org_id, due_date, id) where status in ('planned', 'submitted');

        create table change_orders (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            engagement_id uuid not null,
            number integer not null check (number > 0),
            reason text not null check (length(btrim(reason)) between 1 and 2000),
            contract_value_before bigint not null,
            contract_value_after bigint not null,
            created_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            foreign key (org_id, contractor_id, engagement_id) references engagements (org_id, contractor_id, id),
            unique (engagement_id, number),
            unique (org_id, contractor_id, id)
        );
        create index change_orders_org_engagement_idx on change_orders (org_id, engagement_id, number);

        create table change_order_lines (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            change_order_id uuid not null,
            line_no integer not null check (line_no > 0),
            kind text not null check (kind in ('add', 'adjust', 'cancel')),
            milestone_id uuid not null,
            before jsonb,   -- the milestone's changed fields before (NULL for add)
            after jsonb not null,
            foreign key (org_id, contractor_id, change_order_id) references change_orders (org_id, contractor_id, id),
            foreign key (org_id, contractor_id, milestone_id) references milestones (org_id, contractor_id, id),
            unique (change_order_id, line_no),
            check ((kind = 'add') = (before is null))
        );
        create index change_order_lines_org_co_idx on change_order_lines (org_id, change_order_id, line_no);
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    op.execute("drop table if exists change_order_lines, change_orders, milestones, engagements cascade")
