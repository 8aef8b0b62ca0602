"""Foundation: organizations, users, memberships, contractors, invites, audit trail, login throttle.

Revision ID: 0001_foundation
Revises:
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table organizations (
            id uuid primary key default gen_random_uuid(),
            name text not null check (length(btrim(name)) between 1 and 200),
            default_currency char(3) not null default 'USD' check (default_currency ~ '^[A-Z]{3}$'),
            default_retainage_bps integer not null default 1000 check (default_retainage_bps between 0 and 10000),
            payment_terms_days integer not null default 30 check (payment_terms_days between 0 and 365),
            partial_policy text not null default 'route_back' check (partial_policy in ('route_back', 'split')),
            ap_export_preset text not null default 'generic'
                check (ap_export_preset in ('generic', 'quickbooks_online', 'xero', 'custom')),
            ap_export_columns jsonb not null default '[]'::jsonb check (jsonb_typeof(ap_export_columns) = 'array'),
            created_at timestamptz not null default now()
        );

        create table users (
            id uuid primary key default gen_random_uuid(),
            email text not null check (email ~ '^[^@\\s]+@[^@\\s]+$' and length(email) <= 254),
            name text not null check (length(btrim(name)) between 1 and 200),
            password_hash text,
            is_active boolean not null default true,
            created_at timestamptz not null default now(),
            last_login_at timestamptz,
            sessions_revoked_at timestamptz  -- sign-ins before this are over (sign out ends them everywhere)
        );
        create unique index users_email_key on users (lower(email));

        create table contractors (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            legal_name text not null check (length(btrim(legal_name)) between 1 and 200),
            email text not null check (email ~ '^[^@\\s]+@[^@\\s]+$' and length(email) <= 254),
            ap_vendor_id text check (ap_vendor_id is null or length(btrim(ap_vendor_id)) between 1 and 64),
            payout_details text check (payout_details is null or length(payout_details) <= 500),
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            unique (org_id, id)
        );
        create unique index contractors_org_email_key on contractors (org_id, lower(email));
        create unique index contractors_org_vendor_key on contractors (org_id, ap_vendor_id)
            where ap_vendor_id is not null;

        create table memberships (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            user_id uuid not null references users (id),
            role text not null check (role in ('admin', 'owner', 'finance', 'contractor')),
            contractor_id uuid,
            created_at timestamptz not null default now(),
            -- NULL while invited: a membership counts only once the person accepted it through the
            -- one-time link (proving they hold the address), so no admin can attach someone else's account.
            accepted_at timestamptz,
            unique (org_id, user_id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check ((role = 'contractor') = (contractor_id is not null))
        );
        create index memberships_user_idx on memberships (user_id);
        create index memberships_org_contractor_idx on memberships (org_id, contractor_id);

        create table invites (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            user_id uuid not null references users (id),
            email text not null,  -- as the admin typed it
            name text not null,
            token_hash text not null unique check (token_hash ~ '^[0-9a-f]{64}$'),
            created_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            expires_at timestamptz not null default now() + interval '72 hours',
            used_at timestamptz,
            check (expires_at > created_at and expires_at <= created_at + interval '72 hours')
        );
        create index invites_org_user_idx on invites (org_id, user_id);

        create table audit_events (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null references organizations (id),
            seq bigint not null,
            occurred_at timestamptz not null,
            actor_user_id uuid,
            actor_label text not null,
            action text not null check (action ~ '^[a-z_]+(\\.[a-z_]+)+$'),
            entity_type text not null,
            entity_id text,
            data jsonb not null default '{}'::jsonb,
            prev_hash text not null check (prev_hash ~ '^[0-9a-f]{64}$'),
            hash text not null check (hash ~ '^[0-9a-f]{64}$'),
            unique (org_id, seq)
        );
        create index audit_events_entity_idx on audit_events (org_id, entity_type, entity_id);

        create table login_throttle (
            email_key text primary key check (email_key ~ '^[0-9a-f]{64}$'),  -- sha256 of the lower-cased email
            failures integer not null default 0,
            window_started_at timestamptz not null default now(),
            locked_until timestamptz
        );
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    op.execute(
        "drop table if exists login_throttle, audit_events, invites, memberships, contractors, users, organizations cascade"
    )
