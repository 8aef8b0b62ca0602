-- From project to contract (issue 19; DESIGN.md section 3, "Project and proposal"): the policies and grants of
-- project_categories, projects, project_invitations, proposals, proposal_milestones and proposal_files, the SQL
-- twins of backoffice/domain/projects.py. Here rather than in sql/rls_policies.sql (which stays under 600 lines), with
-- its tools; before sql/new_ids.sql, which reads the grants. The guards that enforce the rules whoever writes are in
-- sql/project_guards.sql.
--
-- Who sees what: staff (admins, owners, finance) see every project and proposal of their organization; a
-- contractor's user sees the projects it may propose on (open to all, or invited) and those it proposed on, and
-- only its own proposals: never a competitor's price or milestones.
--
-- The award's guarantees (services/awards.py takes the locks; these hold them whoever writes):
--   one award per project        proposals_one_accepted (unique) + projects_settled at commit (exactly one accepted,
--                                none left submitted, and its engagement exists)
--   one engagement per proposal  engagements_one_per_proposal (unique); engagements_guard lets an engagement start
--                                active only from a proposal accepted in the same transaction
--   nothing proposed late        proposals_guard (the project takes proposals: open, deadline not over, invited,
--                                one per contractor) and proposals_checked at commit: a proposal written while the
--                                project was being awarded fails when it commits (its foreign key waited for the
--                                award's lock, and the check reads the project again)
--   what was offered is bought   proposal milestones change only under the proposal's row lock, which the award
--                                holds; at commit they share the price exactly, and an accepted proposal's engagement
--                                has the same count and total

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- The rules (twins of backoffice/domain/projects.py; tests/integration/test_project_rule_parity.py). Pure.
-- ---------------------------------------------------------------------------------------------

-- domain.projects.PROJECT_MOVES
create or replace function project_move_roles(p_source text, p_target text) returns text[]
language sql immutable parallel safe as $$
  select case when p_source = 'open' and p_target in ('awarded', 'cancelled') then array['admin', 'owner']
              else array[]::text[] end
$$;

-- domain.projects.PROPOSAL_MOVES
create or replace function proposal_move_roles(p_source text, p_target text) returns text[]
language sql immutable parallel safe as $$
  select case when p_source = 'submitted' and p_target = 'withdrawn' then array['contractor']
              when p_source = 'submitted' and p_target in ('accepted', 'declined') then array['admin', 'owner']
              else array[]::text[] end
$$;

-- domain.projects.takes_proposals
create or replace function project_takes_proposals(p_status text, p_deadline date, p_today date) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_status = 'open' and p_today <= p_deadline, false)
$$;

-- domain.projects.FIXED_ONCE_PROPOSED
create or replace function project_fixed_once_proposed() returns text[]
language sql immutable parallel safe as $$
  select array['title', 'description', 'currency', 'billing_mode', 'advance_bps']
$$;

-- domain.projects.may_withdraw
create or replace function project_allows_withdrawal(p_status text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_status = 'open', false)
$$;

-- domain.projects.proposal_refusal
create or replace function proposal_refusal(p_status text, p_deadline date, p_today date, p_audience text,
                                            p_invited boolean, p_has_proposal boolean) returns text
language sql immutable parallel safe as $$
  select case
    when p_status is distinct from 'open' then 'closed'
    when p_today > p_deadline then 'deadline'
    when p_audience is distinct from 'all' and not coalesce(p_invited, false) then 'not_invited'
    when coalesce(p_has_proposal, false) then 'duplicate'
  end
$$;

-- The day a deadline is compared with: the database's, in UTC (domain callers ask the database for it too).
create or replace function project_today() returns date
language sql stable parallel safe as $$
  select (now() at time zone 'UTC')::date
$$;

-- The words of a refusal, as domain.projects.ProposalRefusal.message says them.
create or replace function proposal_refusal_message(p_refusal text) returns text
language sql immutable strict parallel safe as $$
  select case p_refusal
    when 'closed' then 'This project is no longer open for proposals.'
    when 'deadline' then 'The deadline for proposals on this project has passed.'
    when 'not_invited' then 'This project takes proposals from invited contractors only.'
    when 'duplicate' then 'Your organization has already proposed on this project; edit that proposal instead.'
  end
$$;

-- Who executes them: the web role, whose guards below run as the caller and call them, and whose services ask the
-- database for the day (project_today()). Not PUBLIC. The worker role only the day: an invitation's notice is
-- sent only while the project still takes proposals (services/project_notices.py); no job writes a project or a
-- proposal (tests/integration/test_privileges.py).
select pg_temp.grant_execute(f) from unnest(array[
  'project_move_roles(text, text)', 'proposal_move_roles(text, text)', 'project_takes_proposals(text, date, date)',
  'project_allows_withdrawal(text)', 'project_fixed_once_proposed()',
  'proposal_refusal(text, date, date, text, boolean, boolean)', 'proposal_refusal_message(text)'
]) f;
select pg_temp.grant_execute('project_today()', true);

-- ---------------------------------------------------------------------------------------------
-- Policies and grants.
-- ---------------------------------------------------------------------------------------------

-- The projects a contractor's user may see besides those open to every contractor: invited to, or proposed on
-- (an id array built once per statement, as app_sent_engagement_ids()).
create or replace function app_contractor_project_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  -- Each helper in a scalar subquery, so it runs once, not once per row (as app_visible_user_ids()).
  select coalesce(array_agg(distinct x.project_id), '{}') from (
    select i.project_id from public.project_invitations i
     where i.org_id = (select public.app_org_id()) and i.contractor_id = (select public.app_contractor_id())
    union all
    select p.project_id from public.proposals p
     where p.org_id = (select public.app_org_id()) and p.contractor_id = (select public.app_contractor_id())) x
$$;
do $$
begin
  if to_regclass('public.proposals') is not null then
    perform pg_temp.grant_execute('app_contractor_project_ids()', true);
  end if;
end
$$;

-- project_categories: every member reads the list (a contractor sees a project's category); admins keep it.
select pg_temp.policy('project_categories', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.writes_only_by('project_categories', '{admin}');
select pg_temp.grant_to_app('project_categories', 'select, insert');
-- UPDATE: archiving and restoring (services/projects.set_category_archived); no page renames a category (a project
-- keeps the name it was opened under).
select pg_temp.grant_update_to_app('project_categories', '{archived_at}');
select pg_temp.grant_to_worker('project_categories', 'select');

-- projects: admins and project owners open and run them (projects_guard: the owner its own); finance reads them.
select pg_temp.policy('projects', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('projects', 'contractor_may_see', $p$as restrictive for select using (
  case when (select app_contractor_id()) is null then true
       else (audience = 'all' and status = 'open') or id = any ((select app_contractor_project_ids())::uuid[]) end)$p$);
select pg_temp.writes_only_by('projects', '{admin,owner}');
select pg_temp.grant_to_app('projects', 'select, insert');  -- projects_guard: a new one is open, in its creator's name
select pg_temp.grant_update_to_app('projects', '{title, description, category_id, currency, budget_minor, deadline,
  billing_mode, audience, owner_user_id, status, updated_at, awarded_by, awarded_at, cancelled_by, cancelled_at,
  cancel_reason, advance_bps}');
select pg_temp.grant_to_worker('projects', 'select');  -- what a notice is about

-- project_invitations: the project's runners invite contractors (and take back an invitation nobody used); a
-- contractor's user sees its own.
select pg_temp.contractor_scoped('project_invitations');
select pg_temp.writes_only_by('project_invitations', '{admin,owner}');
select pg_temp.policy('project_invitations', 'invited_by_self', $p$as restrictive for insert with check (invited_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('project_invitations', 'select, insert, delete');
select pg_temp.grant_to_worker('project_invitations', 'select');  -- who an invitation's notice goes to

-- proposals: a contractor's user writes its own (in its own name) and edits or withdraws it; the project's runners
-- accept and decline (the award); staff read every one, a contractor only its own.
select pg_temp.contractor_scoped('proposals');
select pg_temp.policy('proposals', 'writers_insert', $p$as restrictive for insert with check (
  (select app_role()) = 'contractor' and submitted_by = (select app_user_id()))$p$);
select pg_temp.policy('proposals', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'owner', 'contractor')) with check ((select app_role()) in ('admin', 'owner', 'contractor'))$p$);
select pg_temp.policy('proposals', 'never_deleted', $p$as restrictive for delete using (false)$p$);
select pg_temp.grant_to_app('proposals', 'select, insert');  -- proposals_guard: a new one is submitted, in its author's name
select pg_temp.grant_update_to_app('proposals', '{price_minor, timeline, note, status, updated_at, withdrawn_at, decided_by,
  decided_at}');
select pg_temp.grant_to_worker('proposals', 'select');  -- who proposed, told of the award

-- proposal_milestones and proposal_files: the contractor's user writes them with its proposal (replaced, not
-- updated, when it edits); staff read every one, a contractor its own.
select pg_temp.contractor_scoped('proposal_milestones');
select pg_temp.writes_only_by('proposal_milestones', '{contractor}');
select pg_temp.grant_to_app('proposal_milestones', 'select, insert, delete');
select pg_temp.contractor_scoped('proposal_files');
select pg_temp.writes_only_by('proposal_files', '{contractor}');
select pg_temp.grant_to_app('proposal_files', 'select, insert, delete');

