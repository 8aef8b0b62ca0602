"""Stripe's webhook events, each stored once and applied by a job (issue 17, item 4).

Revision ID: 0023_rail_events
Revises: 0022_payout_accounts

``rail_events`` keeps every verified event of a payment rail that concerns one of an organization's payout
accounts: its id (``evt_…``), type, account and payload, when it arrived and when a job applied it with what
outcome. The web role never touches the table: ``rail_event_receive()`` (sql/rails.sql, the owner's) stores an
event once by its id and queues ``apply_rail_event`` for the account's organization in the same transaction; the
worker applies it under that organization's policies.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0023_rail_events"
down_revision = "0022_payout_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        create table if not exists rail_events (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            rail text not null check (rail in ('stripe')),
            event_id text not null check (event_id ~ '^evt_[A-Za-z0-9]{1,64}$'),
            type text not null check (type ~ '^[a-z_.]{3,100}$'),
            account text check (account ~ '^acct_[A-Za-z0-9]{1,64}$'),
            payload jsonb not null,
            received_at timestamptz not null default now(),
            applied_at timestamptz,
            outcome text check (outcome is null or length(outcome) between 1 and 500),
            check ((applied_at is null) = (outcome is null)),
            primary key (org_id, id),
            unique (org_id, rail, event_id)
        );
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("drop function if exists rail_event_receive(text, text, text, text, jsonb)")
    op.execute("drop table if exists rail_events")
