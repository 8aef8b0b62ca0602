"""Payout accounts on the Stripe Connect rail: a contractor connects one (issue 17, item 2).

Revision ID: 0022_payout_accounts
Revises: 0021_review_queue_order

``payout_accounts`` holds a contractor's connected account on a payment rail (Stripe's ``acct_…``) and what
Stripe last said of it: whether it receives transfers and pays out, and what it still needs
(``requirements.currently_due``). One per contractor and rail. Organizations get the setting that turns the
Stripe rail on. Policies and grants: sql/rails.sql.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0022_payout_accounts"
down_revision = "0021_review_queue_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        alter table organizations add column if not exists stripe_rail_enabled boolean not null default false;
        create table if not exists payout_accounts (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            contractor_id uuid not null,
            rail text not null check (rail in ('stripe')),
            external_id text not null check (external_id ~ '^acct_[A-Za-z0-9]{1,64}$'),
            transfers_active boolean not null default false,
            payouts_enabled boolean not null default false,
            details_submitted boolean not null default false,
            currently_due text[] not null default '{}' check (cardinality(currently_due) <= 200),
            connected_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            primary key (org_id, id),
            unique (org_id, contractor_id, rail),
            unique (org_id, rail, external_id),
            foreign key (org_id, contractor_id) references contractors (org_id, id)
        );
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("drop table if exists payout_accounts")
    op.execute("alter table organizations drop column if exists stripe_rail_enabled")
    apply_rls_policies()
