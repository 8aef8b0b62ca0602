"""From project to contract: open projects, contractors' proposals, one award (issue 19).

Revision ID: 0029_projects
Revises: 0028_tax_profiles

``project_categories``: the list an admin keeps in settings; a project names one (required). Archived, never
deleted, so an old project keeps its category.

``projects``: an owner's or admin's open call for proposals (DESIGN.md section 3, "Project and proposal"):
``open`` → ``awarded`` | ``cancelled``. Who may propose: the contractors invited (``project_invitations``) or every
contractor of the organization (``audience = 'all'``). Proposals are taken until the end of ``deadline`` (a day, UTC).

``proposals``: one per (project, contractor), ``submitted`` → ``accepted`` | ``declined`` | ``withdrawn``; at most
one accepted per project. Its price is the sum of its ``proposal_milestones`` (checked at commit); its files are
``proposal_files`` (bytes here: a proposal's attachments are a few small documents).

``engagements.proposal_id``: the contract an award created, linked to its proposal for ever; unique, so a proposal
makes at most one engagement (and, with one accepted proposal per project, a project at most one).
Policies and grants: sql/projects.sql; guards: sql/project_guards.sql.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0029_projects"
down_revision = "0028_tax_profiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        create table if not exists project_categories (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            name text not null check (length(btrim(name)) between 1 and 80 and name = btrim(name)),
            archived_at timestamptz,
            created_at timestamptz not null default now(),
            primary key (org_id, id)
        );
        create unique index if not exists project_categories_name on project_categories (org_id, lower(name));

        create table if not exists projects (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            title text not null check (length(btrim(title)) between 1 and 200),
            description text not null default '' check (length(description) <= 10000),
            category_id uuid not null,
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            budget_minor bigint check (budget_minor > 0),
            deadline date not null,
            billing_mode text not null default 'milestone' check (billing_mode in ('milestone', 'completion')),
            audience text not null default 'invited' check (audience in ('invited', 'all')),
            owner_user_id uuid not null references users (id),
            status text not null default 'open' check (status in ('open', 'awarded', 'cancelled')),
            created_by uuid not null references users (id),
            created_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            awarded_by uuid references users (id),
            awarded_at timestamptz,
            cancelled_by uuid references users (id),
            cancelled_at timestamptz,
            cancel_reason text check (length(btrim(cancel_reason)) between 1 and 2000),
            primary key (org_id, id),
            foreign key (org_id, category_id) references project_categories (org_id, id),
            check ((status = 'awarded') = (awarded_by is not null and awarded_at is not null)),
            check ((status = 'cancelled') = (num_nonnulls(cancelled_by, cancelled_at, cancel_reason) = 3)),
            check (num_nonnulls(cancelled_by, cancelled_at, cancel_reason) in (0, 3))
        );
        create index if not exists projects_list_idx on projects (org_id, status, deadline);

        create table if not exists project_invitations (
            org_id uuid not null references organizations (id),
            project_id uuid not null,
            contractor_id uuid not null,
            invited_by uuid not null references users (id),
            invited_at timestamptz not null default now(),
            primary key (org_id, project_id, contractor_id),
            foreign key (org_id, project_id) references projects (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id)
        );
        create index if not exists project_invitations_contractor_idx
            on project_invitations (org_id, contractor_id, project_id);

        create table if not exists proposals (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            project_id uuid not null,
            contractor_id uuid not null,
            price_minor bigint not null check (price_minor > 0),
            currency text not null check (currency ~ '^[A-Z]{3}$'),
            timeline text not null default '' check (length(timeline) <= 500),
            note text not null default '' check (length(note) <= 10000),
            status text not null default 'submitted'
                check (status in ('submitted', 'accepted', 'declined', 'withdrawn')),
            submitted_by uuid not null references users (id),
            submitted_at timestamptz not null default now(),
            updated_at timestamptz not null default now(),
            withdrawn_at timestamptz,
            decided_by uuid references users (id),
            decided_at timestamptz,
            primary key (org_id, id),
            unique (org_id, project_id, contractor_id),
            foreign key (org_id, project_id) references projects (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check ((status = 'withdrawn') = (withdrawn_at is not null)),
            check ((status in ('accepted', 'declined')) = (decided_at is not null)),
            check (decided_by is null or decided_at is not null)
        );
        create unique index if not exists proposals_one_accepted on proposals (org_id, project_id)
            where status = 'accepted';
        create index if not exists proposals_contractor_idx on proposals (org_id, contractor_id, submitted_at desc);

        create table if not exists proposal_milestones (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            proposal_id uuid not null,
            contractor_id uuid not null,
            seq integer not null check (seq > 0),
            title text not null check (length(btrim(title)) between 1 and 200),
            deliverable text not null default '' check (length(deliverable) <= 4000),
            amount_minor bigint not null check (amount_minor > 0),
            due_date date not null,
            primary key (org_id, id),
            unique (org_id, proposal_id, seq),
            foreign key (org_id, proposal_id) references proposals (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id)
        );

        create table if not exists proposal_files (
            org_id uuid not null references organizations (id),
            id uuid not null default gen_random_uuid(),
            proposal_id uuid not null,
            contractor_id uuid not null,
            position integer not null check (position >= 0),
            file_name text not null check (length(file_name) between 1 and 255),
            content_type text not null,
            size_bytes integer not null check (size_bytes > 0),
            sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
            data bytea not null,
            created_at timestamptz not null default now(),
            primary key (org_id, id),
            foreign key (org_id, proposal_id) references proposals (org_id, id),
            foreign key (org_id, contractor_id) references contractors (org_id, id),
            check (length(data) = size_bytes)
        );
        create index if not exists proposal_files_proposal_idx on proposal_files (org_id, proposal_id, position);

        alter table engagements add column if not exists proposal_id uuid;
        do $$
        begin
          if not exists (select 1 from pg_constraint where conname = 'engagements_proposal_fk') then
            alter table engagements add constraint engagements_proposal_fk
              foreign key (org_id, proposal_id) references proposals (org_id, id);
          end if;
        end
        $$;
        create unique index if not exists engagements_one_per_proposal on engagements (org_id, proposal_id);
    """)
    apply_rls_policies()


def downgrade() -> None:
    op.execute("""
        drop index if exists engagements_one_per_proposal;
        alter table engagements drop constraint if exists engagements_proposal_fk;
        alter table engagements drop column if exists proposal_id;
        drop table if exists proposal_files;
        drop table if exists proposal_milestones;
        drop table if exists proposals;
        drop table if exists project_invitations;
        drop table if exists projects;
        drop table if exists project_categories;
    """)
