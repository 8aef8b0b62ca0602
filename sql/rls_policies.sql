-- Row-level security for backoffice: the context helpers, the policies and the app role's grants.
--
-- Contents
--   1. Context helpers      app_user_id(), app_membership(), app_org_id(), app_role(), app_contractor_id()
--                           session_bypasses_rls(): the owner role's session, for the guards
--   2. Policy tools         pg_temp.policy(), writes_only_by(), contractor_scoped(), grant_to_app(), grant_execute();
--                           the schema's grant, and every table privilege revoked before it is granted
--   3. Foundation           organizations, users, memberships, contractors, invites, audit_events, user_sessions,
--                           login_throttle
--   4. Engagements          engagements, milestones, change_orders, change_order_lines
--   5. Evidence and review  submissions, evidence_files, evidence_chunks, reviews
--   6. Money                invoices, payments, ap_export_batches, ap_export_chunks, ledger_entries, org_counters
--   7. Notifications        email_messages, account_messages, notifications, password_resets
--                           (documents, the data room: sql/data_room.sql; the payment rails: sql/rails.sql)
--   8. The job queue        procrastinate's schema
-- Each table's grants follow its policies. Guard triggers and the other functions live in a file per
-- area (sql/engagements.sql, reviews.sql, money.sql, audit.sql, append_only.sql, auth.sql, jobs.sql),
-- each with the EXECUTE grants of its functions; backoffice.schema.SQL_FILES applies them in order.
--
-- Idempotent: every migration that adds or changes a tenant table re-applies these files.
-- Blocks for tables that do not exist yet (an earlier revision being built) are skipped, so the files
-- can always be the current ones. The app role's name arrives in the setting backoffice.app_role, the
-- worker role's (background jobs, DESIGN.md section 5) in backoffice.worker_role.
--
-- Shape (DESIGN.md section 5): each tenant table gets ONE permissive policy that only scopes the org,
--   org_id = (select app_org_id())
-- and narrows by role with RESTRICTIVE policies. Helpers are wrapped in (select ...) so Postgres
-- evaluates them once per statement. A missing or foreign context yields NULL, so no rows (fail closed).

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- 1. Context helpers. SECURITY DEFINER (owned by the owner role, which bypasses RLS) so that they can
-- read memberships; search_path is pinned so a caller cannot shadow the tables they read.
-- ---------------------------------------------------------------------------------------------

-- Who the session's person is. For the web role, the signed-in person is the one whose sign-in
-- session the connection presents: app.session carries the session's secret token, which only the
-- sign-in functions make (sql/auth.sql: auth_sign_in, accept_invite) and which the database keeps
-- only as a sha256 (table user_sessions, no policy and no grant). app.user_id is not believed from the
-- web role: a connection that can run any SQL could name any account there (before: it was). Every
-- other login role may name its person in app.user_id: the worker (an account message's account:
-- jobs/runtime.py) and the owner role (the CLI and demo seeding, which RLS does not bind anyway).
-- Who the web role is comes from session_user, which no SET ROLE or setting of the caller changes; the
-- names are baked in when the helpers are generated.
--
-- The current user's accepted membership in the org named by app.org_id (no row if there is none,
-- or the user is inactive). It is written once, below, and each helper policies call gets its own
-- copy of the query: a helper calling app_membership() costs a second function call in every policy
-- of every statement (measured 9 us against 5.5 us per call; bench/rls_overhead.py).
--
-- The second branch is the worker (background jobs, DESIGN.md sections 5 and 6): a session whose
-- login role is the worker role, acting for the organization named by app.org_id (app.user_id unset),
-- gets an admin's reach inside that one organization and nothing outside it. Who the worker is comes
-- from session_user too; the web role is not a member of the worker role (`backoffice doctor` checks
-- it), so nothing it does makes it the worker. The two branches exclude each other: the worker is
-- never a person, a person never the worker.
-- (Before: any session setting app.user_id = app.org_id was that organization's worker.)
do $$
declare
  -- The web role's person: the user of the unended, unexpired sign-in session whose token is app.session.
  -- v_identity is that (or app.user_id for the other roles) for the membership helpers, which join the
  -- active user themselves; v_person, for app_user_id(), also asks that the user is active.
  v_session text := case when to_regclass('public.user_sessions') is null then 'null::uuid'  -- an earlier revision
    else $s$select s.user_id from public.user_sessions s
       where s.token_hash = encode(sha256(convert_to(nullif(current_setting('app.session', true), ''), 'UTF8')), 'hex')
         and s.ended_at is null and s.expires_at > now()$s$ end;
  v_identity text := format($i$(case when session_user = %1$L::name then (%2$s)
    else nullif(current_setting('app.user_id', true), '')::uuid end)$i$, current_setting('backoffice.app_role'), v_session);
  v_person text := format($i$(case when session_user = %1$L::name then (%2$s)
    else nullif(current_setting('app.user_id', true), '')::uuid end)$i$, current_setting('backoffice.app_role'),
    case when to_regclass('public.user_sessions') is null then 'null::uuid'
    else v_session || $s$ and exists (select 1 from public.users u where u.id = s.user_id and u.is_active)$s$ end);
  v_query text := $q$
    select %1$s from (
      select m.org_id, m.role, m.contractor_id
        from public.memberships m
        join public.users u on u.id = m.user_id and u.is_active
       where session_user <> %2$L::name                                                -- one-time filters
         and m.user_id = %3$s
         and m.org_id = nullif(current_setting('app.org_id', true), '')::uuid
         and m.accepted_at is not null
      union all
      select o.id, 'admin', null::uuid
        from public.organizations o
       where session_user = %2$L::name                                                 -- a one-time filter:
         and o.id = nullif(current_setting('app.org_id', true), '')::uuid               -- no scan for people
    ) m
  $q$;
  v_helper record;
begin
  execute format('create or replace function public.app_user_id() returns uuid language sql stable security definer'
                 ' set search_path = pg_catalog, pg_temp as %L', 'select ' || v_person);
  for v_helper in select * from (values
      ('app_membership', 'table (org_id uuid, role text, contractor_id uuid)', 'm.org_id, m.role, m.contractor_id'),
      ('app_org_id', 'uuid', 'm.org_id'),
      ('app_role', 'text', 'm.role'),
      ('app_contractor_id', 'uuid', 'm.contractor_id')) h(name, returns, columns)
  loop
    execute format('create or replace function public.%I() returns %s language sql stable security definer'
                   ' set search_path = pg_catalog, pg_temp as %L', v_helper.name, v_helper.returns,
                   format(v_query, v_helper.columns, current_setting('backoffice.worker_role'), v_identity));
  end loop;
end
$$;

-- Policies run as the caller, so the app role and the worker role execute the helpers; nobody else needs them.
do $$
declare
  v_fn text;
begin
  foreach v_fn in array array[
    'app_user_id()',
    'app_membership()',
    'app_org_id()',
    'app_role()',
    'app_contractor_id()'
  ] loop
    execute format('revoke all on function public.%s from public', v_fn);
    execute format('grant execute on function public.%s to %I, %I', v_fn, current_setting('backoffice.app_role'),
                   current_setting('backoffice.worker_role'));
  end loop;
end
$$;

-- Whether the session's login role is one that row-level security does not bind (the owner role:
-- migrations, fixtures, the CLI's owner commands; a superuser). A SECURITY DEFINER guard judges a row
-- by the rules of no person (app_role() NULL) only in such a session. The web and worker roles with
-- no context, or with one that names an organization they are no member of, get app_role() NULL too:
-- their row would fail its policy's WITH CHECK, but that check runs after BEFORE triggers, so a guard
-- that took them for the owner would read (and lock) the rows they name first. session_user, like in
-- the helpers above: no SET ROLE or setting of the caller changes it. Guards call it as the owner.
create or replace function session_bypasses_rls() returns boolean
language sql stable set search_path = pg_catalog, pg_temp as $$
  select coalesce((select r.rolsuper or r.rolbypassrls from pg_catalog.pg_roles r where r.rolname = session_user), false)
$$;
revoke all on function session_bypasses_rls() from public;

-- ---------------------------------------------------------------------------------------------
-- 2. Policy tools. pg_temp.policy() creates one policy if its table exists, after switching RLS on and
-- forcing it (so the table owner is subject to it as well).
-- ---------------------------------------------------------------------------------------------

create or replace function pg_temp.policy(p_table text, p_name text, p_body text) returns void
language plpgsql as $$
begin
  if to_regclass('public.' || p_table) is null then
    return;
  end if;
  execute format('alter table public.%I enable row level security, force row level security', p_table);
  execute format('drop policy if exists %I on public.%I', p_name, p_table);
  execute format('create policy %I on public.%I %s', p_name, p_table, p_body);
end
$$;

-- Restrictive write policies: only the listed roles may insert, update or delete.
create or replace function pg_temp.writes_only_by(p_table text, p_roles text) returns void
language plpgsql as $$
declare
  v_check text := format('(select app_role()) = any (%L::text[])', p_roles);
begin
  perform pg_temp.policy(p_table, 'writers_insert', format('as restrictive for insert with check (%s)', v_check));
  perform pg_temp.policy(p_table, 'writers_update', format('as restrictive for update using (%s) with check (%s)', v_check, v_check));
  perform pg_temp.policy(p_table, 'writers_delete', format('as restrictive for delete using (%s)', v_check));
end
$$;

-- Each of these tables: the org scope (permissive), and a contractor sees only its own contractor's rows.
create or replace function pg_temp.contractor_scoped(p_table text) returns void
language plpgsql as $$
begin
  perform pg_temp.policy(p_table, 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
  -- Staff have no contractor (NULL): every row; a contractor's user: its own contractor's rows.
  -- Written as a CASE because the planner prices a CASE at half the rows, where an equality or OR
  -- against a value known only at run time is priced at almost none, which made it sort a whole
  -- organization's engagements instead of walking the ordered index for one page (bench).
  perform pg_temp.policy(p_table, 'contractor_own', $p$as restrictive using (
    case when (select app_contractor_id()) is null then true else contractor_id = (select app_contractor_id()) end)$p$);
end
$$;

-- The app role's (the web's) privileges on a table, granted if the table exists. Table privileges are the
-- first gate, the policies the second. The web role's alone: the worker role gets what its jobs use, no
-- more, from grant_to_worker() below (before revision 0011 it got every privilege of the web role's).
create or replace function pg_temp.grant_to_app(p_table text, p_privileges text) returns void
language plpgsql as $$
begin
  if to_regclass('public.' || p_table) is not null then
    execute format('grant %s on public.%I to %I', p_privileges, p_table, current_setting('backoffice.app_role'));
  end if;
end
$$;

-- The app role's UPDATE of these columns of a table (column grants: DESIGN.md section 5), of those that
-- exist: every revision applies these files, and an earlier one has not added every column yet. A
-- misspelt column is not silently lost: tests/integration/test_privileges.py holds the grants to a list.
create or replace function pg_temp.grant_update_to_app(p_table text, p_columns text[]) returns void
language plpgsql as $$
declare
  v_columns text;
begin
  select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into v_columns
    from pg_attribute a
   where a.attrelid = to_regclass('public.' || p_table) and a.attnum > 0 and not a.attisdropped
     and a.attname = any (p_columns);
  if v_columns is not null then
    perform pg_temp.grant_to_app(p_table, format('update (%s)', v_columns));
  end if;
end
$$;

-- The worker role's privileges on a table, granted if the table exists: what the jobs of backoffice/jobs
-- and the services they call read and write (notify, send_email, send_password_reset, issue_receipt, the
-- review reminder, the finance digest), no more. The worker acts with an admin's reach in one
-- organization (app_membership()), so a privilege it holds is a privilege over a whole organization's rows.
create or replace function pg_temp.grant_to_worker(p_table text, p_privileges text) returns void
language plpgsql as $$
begin
  if to_regclass('public.' || p_table) is not null then
    execute format('grant %s on public.%I to %I', p_privileges, p_table, current_setting('backoffice.worker_role'));
  end if;
end
$$;

-- The app role, and nobody else, may execute a function of the web's (sign-in, invitations ...);
-- p_worker_too: the worker role too (a helper that a policy calls).
create or replace function pg_temp.grant_execute(p_function text, p_worker_too boolean default false) returns void
language plpgsql as $$
begin
  execute format('revoke all on function public.%s from public, %I', p_function, current_setting('backoffice.worker_role'));
  execute format('grant execute on function public.%s to %I', p_function, current_setting('backoffice.app_role'));
  if p_worker_too then
    execute format('grant execute on function public.%s to %I', p_function, current_setting('backoffice.worker_role'));
  end if;
end
$$;

-- Every table privilege is revoked, then granted again beside its table's policies below: a privilege
-- taken out of this file is taken out of the database.
do $$
begin
  execute format('grant usage on schema public to %I, %I', current_setting('backoffice.app_role'),
                 current_setting('backoffice.worker_role'));
  execute format('revoke all on all tables in schema public from %I, %I', current_setting('backoffice.app_role'),
                 current_setting('backoffice.worker_role'));
end
$$;

-- ---------------------------------------------------------------------------------------------
-- 3. Foundation: the tenant, its people, invitations, the audit trail (its chain: sql/audit.sql), the
-- login throttle.
-- ---------------------------------------------------------------------------------------------

-- organizations: the tenant itself. Members see their org; admins change its settings.
select pg_temp.policy('organizations', 'org_scope', $p$using (id = (select app_org_id()))$p$);
select pg_temp.writes_only_by('organizations', '{admin}');
-- UPDATE: the settings and export-layout pages' fields (services/organizations.py), never its id.
select pg_temp.grant_to_app('organizations', 'select');
select pg_temp.grant_to_worker('organizations', 'select');  -- whose voice a message speaks in, its locale and SLA
select pg_temp.grant_update_to_app('organizations', '{name, default_currency, default_retainage_bps, payment_terms_days,
  partial_policy, evidence_max_files, evidence_max_file_mb, evidence_max_submission_mb, invoice_prefix, segregation_of_duties,
  review_sla_days, locale, ap_export_preset, ap_expense_account, ap_export_date_format, ap_export_columns, ap_export_bom, stripe_rail_enabled, auto_pay_enabled, auto_pay_by, advances_enabled,
  default_advance_bps}');

-- users: a user sees itself and the members of the current org; a contractor sees the org's staff
-- and its own contractor's users, never another contractor's. Only the user changes its own row.
-- New accounts are created only by invite_user_account(); the app role has no INSERT grant.
-- The ids of the users the current user may see, built once per statement (an InitPlan) rather than
-- looked up per row: a per-row lookup cost 36 us for every user row of every join (bench).
create or replace function app_visible_user_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  -- Each helper in a scalar subquery, so it runs once, not once per membership row: called per row, the three
  -- cost 35 ms at 525 members (each finds the person from the sign-in's token), in every statement that
  -- reads users (issue 23: pages grew with the organization).
  select coalesce(array_agg(m.user_id), '{}')
    from public.memberships m
   where m.org_id = (select public.app_org_id())
     and m.accepted_at is not null
     and ((select public.app_role()) <> 'contractor' or m.role <> 'contractor'
          or m.contractor_id = (select public.app_contractor_id()))
$$;
select pg_temp.policy('users', 'self_or_shared_org', $p$using (id = (select app_user_id()) or id = any ((select app_visible_user_ids())::uuid[]))$p$);  -- the cast keeps ANY from reading a subquery
-- No UPDATE: signing out ends sign-in sessions (table user_sessions, sql/auth.sql), and no page renames a user.
select pg_temp.grant_to_app('users', 'select (id, email, name, is_active, created_at, last_login_at)');
-- The worker: to whom a message goes and who acted (services/notification_events, receipts); nothing else.
select pg_temp.grant_to_worker('users', 'select (id, email, name, is_active)');
select pg_temp.grant_execute('app_visible_user_ids()', true);
drop function if exists app_can_see_user(uuid);  -- replaced above; dropped once no policy uses it
drop policy if exists self_update on users;  -- nobody updates a user through the web role any more

-- memberships: contractors see only their own membership; admins manage them.
select pg_temp.policy('memberships', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('memberships', 'contractor_own', $p$as restrictive using (
  (select app_role()) <> 'contractor' or user_id = (select app_user_id()))$p$);
select pg_temp.writes_only_by('memberships', '{admin}');
-- accepted_at is not grantable: only accept_invite() (or the owner, for the first admin) sets it.
select pg_temp.grant_to_app('memberships', 'select, delete, insert (id, org_id, user_id, role, contractor_id), update (role, contractor_id)');
select pg_temp.grant_to_worker('memberships', 'select');  -- who in the organization a notice is for

-- contractors: a contractor user sees only its own contractor; admins manage them.
select pg_temp.policy('contractors', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('contractors', 'contractor_own', $p$as restrictive using (
  case when (select app_contractor_id()) is null then true else id = (select app_contractor_id()) end)$p$);
select pg_temp.writes_only_by('contractors', '{admin}');
-- UPDATE: the contractor form's fields (services/contractors.update_contractor), never its id or org. No
-- DELETE: no page removes a contractor (revision 0011 took the grant back).
select pg_temp.grant_to_app('contractors', 'select, insert');
select pg_temp.grant_update_to_app('contractors', '{legal_name, email, ap_vendor_id, payout_details, updated_at}');
-- The worker names the payee in messages and on receipts; never its payout details.
select pg_temp.grant_to_worker('contractors', 'select (id, org_id, legal_name, email, ap_vendor_id)');

-- invites: admins only, in every direction, and written in their own name.
select pg_temp.policy('invites', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('invites', 'admins_only', $p$as restrictive using ((select app_role()) = 'admin') with check ((select app_role()) = 'admin')$p$);
select pg_temp.policy('invites', 'created_by_self', $p$as restrictive for insert with check (created_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('invites', 'select, insert (id, org_id, user_id, email, name, token_hash, created_by), update (used_at)');

-- audit_events: any member records what they do, as themselves; admins and finance read the trail.
-- Nobody changes it: sql/append_only.sql. The worker has no user (app_user_id() is NULL): its events
-- carry none, hence IS NOT DISTINCT FROM (a plain = would refuse every worker event).
select pg_temp.policy('audit_events', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('audit_events', 'readers', $p$as restrictive for select using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('audit_events', 'actor_is_self', $p$as restrictive for insert with check (actor_user_id is not distinct from (select app_user_id()))$p$);
select pg_temp.grant_to_app('audit_events', 'select, insert');
-- The worker audits the receipts it issues, and reads the chain head a receipt or a digest carries.
select pg_temp.grant_to_worker('audit_events', 'select, insert');

-- user_sessions: sign-in sessions (sql/auth.sql), no policy and no grant: only the functions of
-- sql/auth.sql and the helpers above read it, and only a sign-in function writes a row.
do $$
begin
  if to_regclass('public.user_sessions') is not null then
    alter table public.user_sessions enable row level security, force row level security;
  end if;
end
$$;

-- login_throttle: no policy at all, so nobody but the SECURITY DEFINER functions of sql/auth.sql reads it.
do $$
begin
  if to_regclass('public.login_throttle') is not null then
    alter table public.login_throttle enable row level security, force row level security;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- 4. Engagements, milestones, change orders. Their guard triggers: sql/engagements.sql.
-- ---------------------------------------------------------------------------------------------

-- engagements: staff create and edit them; the contractor's user answers the work request (its guard,
-- engagements_guard, limits that update to the answer). Nobody deletes one: it is cancelled.
select pg_temp.contractor_scoped('engagements');
-- A contractor sees an engagement once its work request is sent, not while staff are drafting it.
select pg_temp.policy('engagements', 'contractor_sent', $p$as restrictive for select using (
  case when (select app_contractor_id()) is null then true else sent_at is not null end)$p$);
select pg_temp.policy('engagements', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) in ('admin', 'owner'))$p$);
select pg_temp.policy('engagements', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'owner', 'contractor')) with check ((select app_role()) in ('admin', 'owner', 'contractor'))$p$);
-- UPDATE: a draft's terms (services/engagements.update_terms) and the moves with their who and when
-- (perform); never its id, org, creator or billing mode.
select pg_temp.grant_to_app('engagements', 'select, insert');
select pg_temp.grant_to_worker('engagements', 'select');  -- what a notice or a receipt is about
select pg_temp.grant_update_to_app('engagements', '{contractor_id, owner_user_id, title, sow_reference, currency, retainage_bps,
  payment_terms_days, service_fee_bps, status, updated_at, sent_at, sent_by, responded_at, responded_by, decline_reason,
  completed_at, cancelled_at, cancel_reason, billing_mode, contract_value_minor, advance_bps, advance_minor, advance_confirmed_by,
  advance_confirmed_at}');

-- milestones: staff write them (directly in a draft, by change order later). A contractor sees the
-- milestones of engagements whose work request was sent (an id array built once per statement).
create or replace function app_sent_engagement_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select coalesce(array_agg(e.id), '{}') from public.engagements e
   where e.org_id = public.app_org_id() and e.contractor_id = public.app_contractor_id() and e.sent_at is not null
$$;
select pg_temp.grant_execute('app_sent_engagement_ids()', true);
select pg_temp.contractor_scoped('milestones');
select pg_temp.policy('milestones', 'contractor_sent', $p$as restrictive for select using (
  case when (select app_contractor_id()) is null then true else engagement_id = any ((select app_sent_engagement_ids())::uuid[]) end)$p$);
-- Staff write milestones; a contractor's user updates one only to mark it submitted (milestones_guard
-- refuses anything else, and wants the submission that goes with it).
select pg_temp.writes_only_by('milestones', '{admin,owner}');
select pg_temp.policy('milestones', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'owner', 'contractor')) with check ((select app_role()) in ('admin', 'owner', 'contractor'))$p$);
-- UPDATE: a draft's schedule (services/schedule), a change order's lines and the status moves of
-- submitting and deciding; never its id, org, contractor or engagement.
select pg_temp.grant_to_app('milestones', 'select, insert, delete');
select pg_temp.grant_update_to_app('milestones', '{title, deliverable, amount_minor, due_date, seq, status, updated_at}');
select pg_temp.grant_to_worker('milestones', 'select');  -- the milestone a notice or a receipt names

-- change orders and their lines: written once by staff, never changed (no UPDATE or DELETE grant).
-- created_at is not insertable: the database's now() is when it was issued, and milestones_guard takes a
-- change order with created_at = now() for one of this transaction (a caller naming the time could
-- backdate one in the engagement's history).
select pg_temp.contractor_scoped('change_orders');
select pg_temp.writes_only_by('change_orders', '{admin,owner}');
select pg_temp.policy('change_orders', 'created_by_self', $p$as restrictive for insert with check (created_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('change_orders', 'select, insert (id, org_id, contractor_id, engagement_id, number, reason,
  contract_value_before, contract_value_after, created_by)');
select pg_temp.grant_to_worker('change_orders', 'select');  -- the change order's notice
select pg_temp.contractor_scoped('change_order_lines');
select pg_temp.writes_only_by('change_order_lines', '{admin,owner}');
select pg_temp.grant_to_app('change_order_lines', 'select, insert');

-- ---------------------------------------------------------------------------------------------
-- 5. Evidence and review (DESIGN.md sections 3 and 5): insert-only for the app role. Their guard
-- triggers: sql/reviews.sql; the evidence never changes for anyone: sql/append_only.sql.
-- ---------------------------------------------------------------------------------------------

-- submissions: the contractor's user writes its own; staff read all of the org's.
select pg_temp.contractor_scoped('submissions');
select pg_temp.writes_only_by('submissions', '{contractor}');
select pg_temp.grant_to_app('submissions', 'select, insert');
select pg_temp.grant_to_worker('submissions', 'select');  -- the submitted and overdue-review notices
-- evidence: written by the contractor's user in the transaction that creates its submission, never later.
select pg_temp.contractor_scoped('evidence_files');
select pg_temp.writes_only_by('evidence_files', '{contractor}');
select pg_temp.policy('evidence_files', 'with_its_submission', $p$as restrictive for insert with check (exists (
  select 1 from public.submissions s where s.org_id = evidence_files.org_id and s.id = submission_id
     and s.submitted_at = now() and s.submitted_by = (select app_user_id())))$p$);
select pg_temp.grant_to_app('evidence_files', 'select, insert');
select pg_temp.grant_to_worker('evidence_files', 'select');  -- the evidence named (and hashed) on a receipt
select pg_temp.contractor_scoped('evidence_chunks');
select pg_temp.writes_only_by('evidence_chunks', '{contractor}');
select pg_temp.policy('evidence_chunks', 'with_its_submission', $p$as restrictive for insert with check (exists (
  select 1 from public.evidence_files f join public.submissions s on s.org_id = f.org_id and s.id = f.submission_id
   where f.org_id = evidence_chunks.org_id and f.id = file_id and s.submitted_at = now()
     and s.submitted_by = (select app_user_id())))$p$);
select pg_temp.grant_to_app('evidence_chunks', 'select, insert');
-- reviews: staff decide in their own name (reviews_guard narrows owners to their engagements); the
-- contractor reads the decisions on its work.
select pg_temp.contractor_scoped('reviews');
select pg_temp.writes_only_by('reviews', '{admin,owner}');
select pg_temp.policy('reviews', 'reviewed_by_self', $p$as restrictive for insert with check (reviewed_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('reviews', 'select, insert');
select pg_temp.grant_to_worker('reviews', 'select');  -- the decision's notice; a receipt's evidence

-- ---------------------------------------------------------------------------------------------
-- 6. Money (DESIGN.md sections 3 and 4). Their guard triggers: sql/money.sql.
-- ---------------------------------------------------------------------------------------------

-- invoices: staff read the org's; a contractor reads its own. The approver (owner or admin) writes
-- them in their own name; finance and admins move their status (column grants below).
select pg_temp.contractor_scoped('invoices');
select pg_temp.writes_only_by('invoices', '{admin,owner}');
select pg_temp.policy('invoices', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('invoices', 'authorized_by_self', $p$as restrictive for insert with check (authorized_by = (select app_user_id()))$p$);
-- (Completion billing widens both insert policies for the contractor's user: sql/completion.sql.)
-- An invoice's amounts never change: only its status columns are updatable, as exporting, voiding a batch
-- and recording a payment write them (updated_at is invoices_move_guard's to set; an export's own move, checked
-- per statement, leaves it and says when in exported_at).
select pg_temp.grant_to_app('invoices', 'select, insert, update (status, batch_id, exported_at, paid_at)');
select pg_temp.grant_to_worker('invoices', 'select');  -- receipts, the finance digest, the money notices
-- payments: a contractor reads its own; finance and admins record them in their own name.
select pg_temp.contractor_scoped('payments');
select pg_temp.writes_only_by('payments', '{admin,finance}');
select pg_temp.policy('payments', 'recorded_by_self', $p$as restrictive for insert with check (recorded_by = (select app_user_id())
  or ((select app_user_id()) is null and source = 'stripe'))$p$);  -- the worker: a rail's, for whoever asked (sql/rails.sql)
select pg_temp.grant_to_app('payments', 'select, insert');
select pg_temp.grant_to_worker('payments', 'select');  -- the payment's notice
-- AP export batches and their files: finance and admins only, in every direction.
select pg_temp.policy('ap_export_batches', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ap_export_batches', 'finance_only', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.grant_to_app('ap_export_batches', 'select, insert, update (size_bytes, sha256, row_count, total_minor, invoice_ids, status, voided_by, voided_at, void_reason)');
select pg_temp.grant_to_worker('ap_export_batches', 'select');  -- the exported batch's notice
select pg_temp.policy('ap_export_chunks', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ap_export_chunks', 'finance_only', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('ap_export_chunks', 'with_its_batch', $p$as restrictive for insert with check (exists (
  select 1 from public.ap_export_batches b where b.org_id = ap_export_chunks.org_id and b.id = batch_id
     and b.created_at = now() and b.created_by = (select app_user_id())))$p$);
select pg_temp.grant_to_app('ap_export_chunks', 'select, insert');
-- ledger: finance and admins read it; whoever performs a money event writes its lines (insert only).
select pg_temp.policy('ledger_entries', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ledger_entries', 'readers', $p$as restrictive for select using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.writes_only_by('ledger_entries', '{admin,owner,finance}');
select pg_temp.grant_to_app('ledger_entries', 'select, insert');

-- The derived totals (revision 0014; sql/money.sql: invoices_totals_apply writes them, as the owner). The web
-- reads them; nobody writes them but that trigger. The queue's and the batches' totals are finance's and the
-- admins'; retainage per engagement is read like the invoices it sums (staff all, a contractor its own).
select pg_temp.policy('invoice_totals', 'org_scope', $p$using (org_id = (select app_org_id()))$p$);
select pg_temp.policy('invoice_totals', 'finance_only', $p$as restrictive using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.grant_to_app('invoice_totals', 'select');
select pg_temp.policy('ap_batch_paid', 'org_scope', $p$using (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ap_batch_paid', 'finance_only', $p$as restrictive using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.grant_to_app('ap_batch_paid', 'select');
select pg_temp.policy('retainage_totals', 'org_scope', $p$using (org_id = (select app_org_id()))$p$);
select pg_temp.policy('retainage_totals', 'contractor_own', $p$as restrictive using (
  case when (select app_contractor_id()) is null then true else contractor_id = (select app_contractor_id()) end)$p$);
select pg_temp.grant_to_app('retainage_totals', 'select');
select pg_temp.policy('contractor_retainage_totals', 'org_scope', $p$using (org_id = (select app_org_id()))$p$);
select pg_temp.policy('contractor_retainage_totals', 'contractor_own', $p$as restrictive using (
  case when (select app_contractor_id()) is null then true else contractor_id = (select app_contractor_id()) end)$p$);
select pg_temp.grant_to_app('contractor_retainage_totals', 'select');

-- org_counters: no policy at all; only next_org_number() (sql/money.sql) touches it.
do $$
begin
  if to_regclass('public.org_counters') is not null then
    alter table public.org_counters enable row level security, force row level security;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- 7. Notifications (DESIGN.md section 6).
-- ---------------------------------------------------------------------------------------------

-- email_messages, the outbox. An organization's messages are written by its worker and its admins
-- (invitations) and read by admins only: a message may hold a sign-in link.
select pg_temp.policy('email_messages', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('email_messages', 'admins_only', $p$as restrictive
  using ((select app_role()) = 'admin') with check ((select app_role()) = 'admin')$p$);
-- INSERT: the columns notifications.store_message writes (an admin's invitation on the web; every other
-- message from the worker's jobs); how a delivery went (last_error, provider_id, sent_at) and when
-- (created_at, updated_at) are never the writer's to say: a new message cannot claim it was sent.
-- UPDATE: an admin sends a kept or failed message again (services/notifications.requeue); how each
-- delivery went is the worker's to record (services/email_delivery.deliver).
select pg_temp.grant_to_app('email_messages', 'select, insert (id, org_id, event, recipient_user_id, recipient, subject,
  html, text, status, attempts, dedupe_key, entity_type, entity_id), update (status, updated_at)');
select pg_temp.grant_to_worker('email_messages', 'select, insert (id, org_id, event, recipient_user_id, recipient, subject,
  html, text, status, attempts, dedupe_key, entity_type, entity_id),
  update (status, updated_at, attempts, last_error, provider_id, sent_at)');
-- account_messages: an account's own messages (a password reset: no organization; migration 0015 moved them
-- out of email_messages), the worker role's alone, which writes and sends one for the account its job names
-- (app.user_id, no org). The web role has no policy and no grant: a request can name any account in
-- app.user_id (its policy own_account_messages went in revision 0009).
select pg_temp.policy('account_messages', 'worker_account_messages_insert', format($p$for insert to %I
  with check (recipient_user_id = (select app_user_id()))$p$, current_setting('backoffice.worker_role')));
select pg_temp.policy('account_messages', 'worker_account_messages_select', format($p$for select to %I
  using (recipient_user_id = (select app_user_id()))$p$, current_setting('backoffice.worker_role')));
select pg_temp.policy('account_messages', 'worker_account_messages_update', format($p$for update to %I
  using (recipient_user_id = (select app_user_id()))
  with check (recipient_user_id = (select app_user_id()))$p$, current_setting('backoffice.worker_role')));
select pg_temp.grant_to_worker('account_messages', 'select, insert (id, event, recipient_user_id, recipient, subject,
  html, text, status, attempts, dedupe_key, entity_type, entity_id),
  update (status, updated_at, attempts, last_error, provider_id, sent_at)');

-- notifications: each person reads and marks their own; the worker (an admin's reach) writes them, and
-- only the worker: no web request writes one (the INSERT grant is the worker role's since revision 0011;
-- the admin-only policy stays behind it). The worker reads none (it is nobody's user) and writes neither
-- when one was made nor that it was read.
select pg_temp.policy('notifications', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('notifications', 'own_select', $p$as restrictive for select using (user_id = (select app_user_id()))$p$);
select pg_temp.policy('notifications', 'own_update', $p$as restrictive for update using (user_id = (select app_user_id())) with check (user_id = (select app_user_id()))$p$);
select pg_temp.policy('notifications', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) = 'admin')$p$);
select pg_temp.grant_to_app('notifications', 'select, update (read_at)');
select pg_temp.grant_to_worker('notifications', 'insert (id, org_id, user_id, event, title, body, url, dedupe_key)');

-- documents, the data room: its policies and grants are in sql/data_room.sql.

-- password_resets: no policy at all; only the functions of sql/auth.sql touch it.
do $$
begin
  if to_regclass('public.password_resets') is not null then
    alter table public.password_resets enable row level security, force row level security;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- 8. The job queue (procrastinate's schema): the worker role takes and finishes jobs; the web role
-- has nothing in it at all (its tables have no row-level security: a job's arguments name its
-- organization) and enqueues only through enqueue_job() (sql/jobs.sql), which checks the job is for
-- the current organization and of a kind the web may ask for. `backoffice doctor` fails on any
-- privilege of the web role here.
-- ---------------------------------------------------------------------------------------------

do $$
declare
  v_app text := current_setting('backoffice.app_role');
  v_worker text := current_setting('backoffice.worker_role');
begin
  if to_regnamespace('procrastinate') is not null then
    -- PUBLIC too: functions are executable by PUBLIC unless revoked.
    execute format('revoke all on schema procrastinate from public, %I', v_app);
    execute format('revoke all on all tables in schema procrastinate from public, %I', v_app);
    execute format('revoke all on all sequences in schema procrastinate from public, %I', v_app);
    execute format('revoke all on all routines in schema procrastinate from public, %I', v_app);
    execute format('grant usage on schema procrastinate to %I', v_worker);
    execute format('grant select, insert, update, delete on all tables in schema procrastinate to %I', v_worker);
    execute format('grant usage, select on all sequences in schema procrastinate to %I', v_worker);
    execute format('grant execute on all routines in schema procrastinate to %I', v_worker);
  end if;
end
$$;
