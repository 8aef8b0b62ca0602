"""Evidence and review: submissions, their files (bytes in PostgreSQL), and one review per submission.

Revision ID: 0003_reviews
Revises: 0002_engagements

Files are kept in the database so the tenant rules cover them like every other row: ``evidence_files``
holds what a reviewer and an auditor need (name, sniffed type, size, sha256) and ``evidence_chunks``
the bytes, in 1 MiB pieces so that neither an upload nor a download ever holds a whole file in memory.
Submissions, files and reviews are insert-only for the app role: evidence that a decision was based
on can never change under it.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0003_reviews"
down_revision = "0002_engagements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Evidence limits per organization; the defaults are the most the product allows.
        alter table organizations
            add column evidence_max_files integer not null default 20 check (evidence_max_files between 1 and 20),
            add column evidence_max_file_mb integer not null default 25 check (evidence_max_file_mb between 1 and 25),
            add column evidence_max_submission_mb integer not null default 100
                check (evidence_max_submission_mb between 1 and 100);

        create table submissions (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            milestone_id uuid not null,
            revision integer not null check (revision > 0),
            note text not null check (length(btrim(note)) between 1 and 4000),
            links jsonb not null default '[]'::jsonb
                check (jsonb_typeof(links) = 'array' and jsonb_array_length(links) <= 10
                       -- every link a web link (the app checks the same, with a message)
                       and not jsonb_path_exists(links, '$[*] ? (@.type() != "string" || !(@ like_regex "^https?://[^[:space:]]+$" flag "i"))')),
            submitted_by uuid not null references users (id),
            submitted_at timestamptz not null default now(),
            foreign key (org_id, contractor_id, milestone_id) references milestones (org_id, contractor_id, id),
            unique (milestone_id, revision),
            unique (org_id, contractor_id, id)
        );
        create index submissions_org_milestone_idx on submissions (org_id, milestone_id, revision desc);

        create table evidence_files (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            submission_id uuid not null,
            position integer not null check (position between 1 and 20),
            file_name text not null check (length(file_name) between 1 and 200 and file_name !~ '[/\\\\[:cntrl:]]'
                                           and file_name not in ('.', '..')),
            content_type text not null check (content_type in (
                'application/pdf', 'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'text/plain', 'text/csv',
                'text/markdown', 'application/zip',
                'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
                'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
                'application/vnd.openxmlformats-officedocument.presentationml.presentation')),
            size_bytes bigint not null check (size_bytes > 0),
            sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
            created_at timestamptz not null default now(),
            foreign key (org_id, contractor_id, submission_id) references submissions (org_id, contractor_id, id),
            unique (submission_id, position),
            unique (org_id, contractor_id, id)
        );
        create index evidence_files_org_submission_idx on evidence_files (org_id, submission_id, position);

        create table evidence_chunks (
            org_id uuid not null,
            contractor_id uuid not null,
            file_id uuid not null,
            chunk_no integer not null check (chunk_no >= 0),
            data bytea not null check (octet_length(data) between 1 and 1048576),
            primary key (file_id, chunk_no),
            foreign key (org_id, contractor_id, file_id) references evidence_files (org_id, contractor_id, id)
        );
        -- PDFs, images and archives are compressed already: storing them as they come saves the CPU
        -- of a compression attempt on every upload.
        alter table evidence_chunks alter column data set storage external;

        create table reviews (
            id uuid primary key default gen_random_uuid(),
            org_id uuid not null,
            contractor_id uuid not null,
            milestone_id uuid not null,
            submission_id uuid not null,
            decision text not null check (decision in ('approve', 'partial', 'dispute')),
            reason text check (reason is null or length(btrim(reason)) between 1 and 2000),
            partial_policy text check (partial_policy in ('route_back', 'split')),
            milestone_amount_minor bigint not null check (milestone_amount_minor > 0),  -- the amount decided on
            approved_amount_minor bigint check (approved_amount_minor > 0),             -- a split's approved part
            evidence_sha256 text[] not null,  -- the files the reviewer was shown, in their order
            reviewed_by uuid not null references users (id),
            reviewed_at timestamptz not null default now(),
            foreign key (org_id, contractor_id, submission_id) references submissions (org_id, contractor_id, id),
            foreign key (org_id, contractor_id, milestone_id) references milestones (org_id, contractor_id, id),
            constraint reviews_one_per_submission unique (submission_id),
            unique (org_id, contractor_id, id),
            check (decision = 'approve' or reason is not null),
            check ((decision = 'partial') = (partial_policy is not null)),
            -- an approved part exactly when a partial decision splits the milestone, and less than all of it
            check ((approved_amount_minor is not null) = (partial_policy is not distinct from 'split')),
            check (approved_amount_minor is null or approved_amount_minor < milestone_amount_minor)
        );
        create index reviews_org_milestone_idx on reviews (org_id, milestone_id);
        """
    )
    apply_rls_policies()


def downgrade() -> None:
    op.execute(
        """
        drop table if exists reviews, evidence_chunks, evidence_files, submissions cascade;
        alter table organizations drop column if exists evidence_max_files,
            drop column if exists evidence_max_file_mb, drop column if exists evidence_max_submission_mb;
        """
    )
