"""Completion billing: an advance, invoices for approved tasks, and the final payment (issue 20).

Revision ID: 0030_completion_billing
Revises: 0029_projects

DESIGN.md section 4, "Completion billing", invariant 6; the rules are in backoffice/domain/completion.py.

``organizations``: whether its engagements may take an advance (``advances_enabled``) and the default advance
(``default_advance_bps``, 12%, 0–50%).

``engagements``: under billing mode ``completion``, the contract value (``contract_value_minor``; change orders
move it with the tasks), the advance's rate and amount (``advance_bps``, ``advance_minor``: round_half_up(value ×
rate), fixed once the work request is sent) and who confirmed the advance, when sending the work request or
awarding (``advance_confirmed_by``/``_at``). The tasks (its milestones) share the value less the advance.

``projects.advance_bps``: the advance a completion project's contract takes; its proposals' milestones share the
price less it.

``invoices``: kinds ``advance`` (at activation, nothing withheld, no fee; at most one per engagement, ever),
``completion`` (raised by the contractor's user, ``raised_by``, for approved tasks) and ``final`` (with the last
task's approval; one live per engagement). ``invoice_tasks`` names the tasks a completion or final invoice bills;
a task is billed by one live invoice (voided with its invoice when an approval step rejects it).
Policies and grants: sql/completion.sql; guards: sql/money.sql, sql/engagements.sql and sql/completion.sql.
"""

import importlib.util
from pathlib import Path

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0030_completion_billing"
down_revision = "0029_projects"
branch_labels = None
depends_on = None

_spec = importlib.util.spec_from_file_location("m0018", Path(__file__).with_name("0018_invoice_checks_once.py"))
_m0018 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_m0018)

# invoices_guard's list of an invoice's own columns (sql/money.sql) as of this revision: revision 0018's with the
# completion kinds. tests/integration/test_money_guards.py holds the two equal.
MOVED = {
    **_m0018.MOVED,
    "invoices_kind_check": "kind = any (array['milestone', 'retainage_release', 'advance', 'completion', 'final'])",
    "invoices_kind_shape": (
        "(kind = 'milestone' and milestone_id is not null and review_id is not null and release_reason is null"
        " and raised_by is null)"
        " or (kind = 'retainage_release' and milestone_id is null and review_id is null and retainage_minor = 0"
        " and fee_minor = 0 and raised_by is null)"
        " or (kind = 'advance' and milestone_id is null and review_id is null and retainage_minor = 0"
        " and fee_minor = 0 and release_reason is null and raised_by is null)"
        " or (kind = 'completion' and milestone_id is null and review_id is null and release_reason is null"
        " and raised_by is not null)"
        " or (kind = 'final' and milestone_id is null and review_id is null and release_reason is null"
        " and raised_by is null)"
    ),
}


def upgrade() -> None:
    op.execute("""
        alter table organizations
            add column if not exists advances_enabled boolean not null default true,
            add column if not exists default_advance_bps integer not null default 1200
                check (default_advance_bps between 0 and 5000);

        alter table engagements
            add column if not exists contract_value_minor bigint check (contract_value_minor > 0),
            add column if not exists advance_bps integer not null default 0 check (advance_bps between 0 and 5000),
            add column if not exists advance_minor bigint not null default 0 check (advance_minor >= 0),
            add column if not exists advance_confirmed_by uuid references users (id),
            add column if not exists advance_confirmed_at timestamptz;
        do $$
        begin
          if not exists (select 1 from pg_constraint where conname = 'engagements_billing_terms') then
            alter table engagements add constraint engagements_billing_terms check (
              (billing_mode = 'milestone' and contract_value_minor is null and advance_bps = 0 and advance_minor = 0
               and advance_confirmed_by is null and advance_confirmed_at is null)
              or (billing_mode = 'completion' and contract_value_minor is not null
                  and advance_minor < contract_value_minor
                  and (advance_confirmed_by is null) = (advance_confirmed_at is null)));
          end if;
        end
        $$;

        alter table projects
            add column if not exists advance_bps integer check (advance_bps between 0 and 5000);
        do $$
        begin
          if not exists (select 1 from pg_constraint where conname = 'projects_advance_only_for_completion') then
            alter table projects add constraint projects_advance_only_for_completion
              check ((billing_mode = 'completion') = (advance_bps is not null));
          end if;
        end
        $$;

        alter table invoices add column if not exists raised_by uuid references users (id);
        create unique index if not exists invoices_one_advance_per_engagement on invoices (org_id, engagement_id)
          where kind = 'advance';
        create unique index if not exists invoices_one_final_per_engagement on invoices (org_id, engagement_id)
          where kind = 'final' and voided_at is null;

        create table if not exists invoice_tasks (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            invoice_id uuid not null,
            milestone_id uuid not null,
            engagement_id uuid not null,
            contractor_id uuid not null,
            amount_minor bigint not null check (amount_minor > 0),
            created_at timestamptz not null default now(),
            voided_at timestamptz,
            primary key (org_id, id),
            unique (org_id, invoice_id, milestone_id),
            foreign key (org_id, invoice_id) references invoices (org_id, id),
            foreign key (org_id, milestone_id) references milestones (org_id, id),
            foreign key (org_id, engagement_id) references engagements (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id)
        );
        -- A task is billed once: by one live invoice.
        create unique index if not exists invoice_tasks_billed_once on invoice_tasks (org_id, milestone_id)
          where voided_at is null;
        create index if not exists invoice_tasks_engagement_idx on invoice_tasks (org_id, engagement_id);
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop table if exists invoice_tasks;
        drop index if exists invoices_one_final_per_engagement;
        drop index if exists invoices_one_advance_per_engagement;
        alter table invoices drop column if exists raised_by;
        alter table projects drop constraint if exists projects_advance_only_for_completion;
        alter table projects drop column if exists advance_bps;
        alter table engagements drop constraint if exists engagements_billing_terms;
        alter table engagements
            drop column if exists advance_confirmed_at,
            drop column if exists advance_confirmed_by,
            drop column if exists advance_minor,
            drop column if exists advance_bps,
            drop column if exists contract_value_minor;
        alter table organizations drop column if exists default_advance_bps, drop column if exists advances_enabled;
    """)
