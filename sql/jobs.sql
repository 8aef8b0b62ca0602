-- Background jobs (DESIGN.md section 6): what a periodic job may learn before it acts for an
-- organization. The queue is procrastinate's own schema (migration 0005); the app role's grants on it
-- are in sql/rls_policies.sql.

set local check_function_bodies = off;

-- Periodic jobs (the review reminder, the finance digest) run once per organization: this is the
-- list of them, and nothing else about them.
create or replace function job_org_ids() returns setof uuid
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select o.id from public.organizations o order by o.id
$$;

-- From the revision that adds the job queue.
select pg_temp.grant_execute('job_org_ids()') where to_regnamespace('procrastinate') is not null;
