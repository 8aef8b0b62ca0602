-- Row-level security for backoffice: helpers, policies and the app role's grants.
--
-- Idempotent: every migration that adds or changes a tenant table re-applies this whole file.
-- Blocks for tables that do not exist yet (an earlier revision being built) are skipped, so the file
-- can always be the current one. The app role's name arrives in the setting backoffice.app_role.
--
-- Shape (DESIGN.md section 5): each tenant table gets ONE permissive policy that only scopes the org,
--   org_id = (select app_org_id())
-- and narrows by role with RESTRICTIVE policies. Helpers are wrapped in (select ...) so Postgres
-- evaluates them once per statement. A missing or foreign context yields NULL, so no rows (fail closed).

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Context helpers. SECURITY DEFINER (owned by the owner role, which bypasses RLS) so that they can
-- read memberships; search_path is pinned so a caller cannot shadow the tables they read.
-- ---------------------------------------------------------------------------------------------

create or replace function app_user_id() returns uuid
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select nullif(current_setting('app.user_id', true), '')::uuid
$$;

-- The current user's accepted membership in the org named by app.org_id (no row if there is none,
-- or the user is inactive). It is written once, below, and each helper policies call gets its own
-- copy of the query: a helper calling app_membership() costs a second function call in every policy
-- of every statement (measured 9 us against 5.5 us per call; bench/rls_overhead.py).
--
-- The second branch is the organization's worker (background jobs, DESIGN.md section 6): a job acts
-- as app.user_id = app.org_id = the job's organization, with an admin's reach inside that one
-- organization and nothing outside it. No user's id is ever an organization's id (both are random
-- uuids), so no signed-in person can become a worker, and a worker of org A naming org B sees nothing.
do $$
declare
  v_query text := $q$
    select %s from (
      select m.org_id, m.role, m.contractor_id
        from public.memberships m
        join public.users u on u.id = m.user_id and u.is_active
       where m.user_id = nullif(current_setting('app.user_id', true), '')::uuid
         and m.org_id = nullif(current_setting('app.org_id', true), '')::uuid
         and m.accepted_at is not null
      union all
      select o.id, 'admin', null::uuid
        from public.organizations o
       where current_setting('app.user_id', true) = current_setting('app.org_id', true)  -- a one-time filter:
         and o.id = nullif(current_setting('app.org_id', true), '')::uuid               -- no scan for people
    ) m
  $q$;
  v_helper record;
begin
  for v_helper in select * from (values
      ('app_membership', 'table (org_id uuid, role text, contractor_id uuid)', 'm.org_id, m.role, m.contractor_id'),
      ('app_org_id', 'uuid', 'm.org_id'),
      ('app_role', 'text', 'm.role'),
      ('app_contractor_id', 'uuid', 'm.contractor_id')) h(name, returns, columns)
  loop
    execute format('create or replace function public.%I() returns %s language sql stable security definer'
                   ' set search_path = pg_catalog, pg_temp as %L', v_helper.name, v_helper.returns, format(v_query, v_helper.columns));
  end loop;
end
$$;

-- The organizations the current user belongs to: the organization switcher reads this.
create or replace function my_memberships()
returns table (org_id uuid, org_name text, role text, contractor_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select o.id, o.name, m.role, m.contractor_id
    from public.memberships m
    join public.organizations o on o.id = m.org_id
    join public.users u on u.id = m.user_id and u.is_active
   where m.user_id = nullif(current_setting('app.user_id', true), '')::uuid
     and m.accepted_at is not null
   order by o.name, o.id
$$;

-- ---------------------------------------------------------------------------------------------
-- Sign-in. The app role cannot read password hashes with a plain SELECT (column grants below);
-- login goes through these functions, which also keep the failed-login throttle.
-- ---------------------------------------------------------------------------------------------

create or replace function auth_lookup(p_email text)
returns table (user_id uuid, password_hash text, is_active boolean, locked_until timestamptz)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.id, u.password_hash, u.is_active,
         (select t.locked_until from public.login_throttle t
           where t.email_key = encode(sha256(convert_to(lower(p_email), 'UTF8')), 'hex') and t.locked_until > now())
    from (select 1) one
    left join public.users u on lower(u.email) = lower(p_email)
$$;

-- Count a failure; after p_max failures within p_minutes the address is locked for p_minutes.
-- Returns the lock's end when locked, NULL otherwise.
create or replace function auth_record_failure(p_email text, p_max int, p_minutes int) returns timestamptz
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_row public.login_throttle;
begin
  insert into public.login_throttle as t (email_key, failures, window_started_at)
  values (encode(sha256(convert_to(lower(p_email), 'UTF8')), 'hex'), 1, now())
  on conflict (email_key) do update
     set failures = case when t.window_started_at < now() - make_interval(mins => p_minutes)
                         then 1 else t.failures + 1 end,
         window_started_at = case when t.window_started_at < now() - make_interval(mins => p_minutes)
                                  then now() else t.window_started_at end
  returning * into v_row;
  if v_row.failures >= p_max then
    update public.login_throttle
       set locked_until = now() + make_interval(mins => p_minutes), failures = 0, window_started_at = now()
     where email_key = v_row.email_key
     returning locked_until into v_row.locked_until;
    return v_row.locked_until;
  end if;
  return null;
end
$$;

create or replace function auth_record_success(p_user_id uuid) returns void
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  delete from public.login_throttle t using public.users u
   where u.id = p_user_id and t.email_key = encode(sha256(convert_to(lower(u.email), 'UTF8')), 'hex');
  update public.users set last_login_at = now() where id = p_user_id;
$$;

-- An admin of the current org invites someone by email: returns the existing account's id, or a new
-- account's (without a password). Nothing about an existing account is revealed, and nothing is granted:
-- the membership the caller then writes stays pending until the person accepts it with the link.
drop function if exists invite_user_account(text, text);
create function invite_user_account(p_email text, p_name text) returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_id uuid;
begin
  if public.app_role() is distinct from 'admin' then
    raise exception 'only an admin of the current organization can invite users' using errcode = '42501';
  end if;
  select u.id into v_id from public.users u where lower(u.email) = lower(p_email);
  if v_id is null then
    insert into public.users (email, name) values (p_email, p_name) returning id into v_id;
  end if;
  return v_id;
end
$$;

-- A usable invitation: unused, unexpired, its membership still pending. Whether the account already
-- has a password decides what accepting asks for (a new password, or the existing one).
create or replace function invite_details(p_token_hash text)
returns table (email text, org_name text, has_password boolean)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.email, o.name, u.password_hash is not null
    from public.invites i
    join public.users u on u.id = i.user_id
    join public.organizations o on o.id = i.org_id
    join public.memberships m on m.org_id = i.org_id and m.user_id = i.user_id and m.accepted_at is null
   where i.token_hash = p_token_hash and i.used_at is null and i.expires_at > now()
$$;

-- Accept an invitation: the unguessable token proves the person holds the address it was sent to.
-- An account without a password gets p_password_hash; an account with one joins only when the app has
-- signed in as it (app.user_id, after checking the password). Returns the user and org, or no row.
create or replace function accept_invite(p_token_hash text, p_password_hash text)
returns table (user_id uuid, org_id uuid)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_inv public.invites;
  v_membership uuid;
  v_hash text;
begin
  select * into v_inv from public.invites i
   where i.token_hash = p_token_hash and i.used_at is null and i.expires_at > now()
   for update;
  if not found then
    return;
  end if;
  select m.id into v_membership from public.memberships m
   where m.org_id = v_inv.org_id and m.user_id = v_inv.user_id and m.accepted_at is null
   for update;
  if not found then
    return;
  end if;
  select u.password_hash into v_hash from public.users u where u.id = v_inv.user_id and u.is_active for update;
  if not found then
    return;
  end if;
  if v_hash is null then
    -- A first password only for an account nobody uses yet: never one that already belongs somewhere.
    if p_password_hash is null
       or exists (select 1 from public.memberships m2 where m2.user_id = v_inv.user_id and m2.accepted_at is not null) then
      return;
    end if;
    update public.users set password_hash = p_password_hash where id = v_inv.user_id;
  elsif public.app_user_id() is distinct from v_inv.user_id then
    return;
  end if;
  update public.memberships set accepted_at = now() where id = v_membership;
  update public.invites set used_at = now() where id = v_inv.id;
  return query select v_inv.user_id, v_inv.org_id;
end
$$;


-- ---------------------------------------------------------------------------------------------
-- Audit trail: append-only and hash-chained per organization.
-- The chain fields are computed here, under a per-org advisory lock, whoever inserts: callers cannot
-- choose seq, prev_hash or hash. `backoffice audit verify` recomputes every hash in Python from the
-- same canonical text, so a row altered behind the app's back is named.
-- ---------------------------------------------------------------------------------------------

create or replace function audit_events_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_prev_seq bigint;
  v_prev_hash text;
begin
  perform pg_advisory_xact_lock(hashtextextended('audit_events:' || new.org_id::text, 0));
  select e.seq, e.hash into v_prev_seq, v_prev_hash
    from public.audit_events e where e.org_id = new.org_id order by e.seq desc limit 1;
  new.seq := coalesce(v_prev_seq, 0) + 1;
  new.prev_hash := coalesce(v_prev_hash, repeat('0', 64));
  new.occurred_at := date_trunc('microseconds', clock_timestamp());
  new.hash := encode(sha256(convert_to(
      concat_ws('|', new.org_id::text, new.seq::text,
                to_char(new.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                coalesce(new.actor_user_id::text, ''), new.actor_label, new.action, new.entity_type,
                coalesce(new.entity_id, ''), new.data::text, new.prev_hash),
      'UTF8')), 'hex');
  return new;
end
$$;

create or replace function audit_events_reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception 'audit_events is append-only: % is not allowed', tg_op using errcode = '42501';
end
$$;

do $$
begin
  if to_regclass('public.audit_events') is not null then
    drop trigger if exists audit_events_chain on public.audit_events;
    create trigger audit_events_chain before insert on public.audit_events
      for each row execute function audit_events_chain();
    drop trigger if exists audit_events_append_only on public.audit_events;
    create trigger audit_events_append_only before update or delete on public.audit_events
      for each row execute function audit_events_reject_change();
    drop trigger if exists audit_events_no_truncate on public.audit_events;
    create trigger audit_events_no_truncate before truncate on public.audit_events
      for each statement execute function audit_events_reject_change();
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Policies. pg_temp.policy() creates one policy if its table exists, after switching RLS on and
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

-- organizations: the tenant itself. Members see their org; admins change its settings.
select pg_temp.policy('organizations', 'org_scope', $p$using (id = (select app_org_id()))$p$);
select pg_temp.writes_only_by('organizations', '{admin}');

-- users: a user sees itself and the members of the current org; a contractor sees the org's staff
-- and its own contractor's users, never another contractor's. Only the user changes its own row.
-- New accounts are created only by invite_user_account(); the app role has no INSERT grant.
-- The ids of the users the current user may see, built once per statement (an InitPlan) rather than
-- looked up per row: a per-row lookup cost 36 us for every user row of every join (bench).
create or replace function app_visible_user_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select coalesce(array_agg(m.user_id), '{}')
    from public.memberships m
   where m.org_id = public.app_org_id()
     and m.accepted_at is not null
     and (public.app_role() <> 'contractor' or m.role <> 'contractor' or m.contractor_id = public.app_contractor_id())
$$;
select pg_temp.policy('users', 'self_or_shared_org', $p$using (id = (select app_user_id()) or id = any ((select app_visible_user_ids())::uuid[]))$p$);  -- the cast keeps ANY from reading a subquery
drop function if exists app_can_see_user(uuid);  -- replaced above; dropped once no policy uses it
select pg_temp.policy('users', 'self_update', $p$as restrictive for update using (id = (select app_user_id())) with check (id = (select app_user_id()))$p$);

-- memberships: contractors see only their own membership; admins manage them.
select pg_temp.policy('memberships', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('memberships', 'contractor_own', $p$as restrictive using (
  (select app_role()) <> 'contractor' or user_id = (select app_user_id()))$p$);
select pg_temp.writes_only_by('memberships', '{admin}');

-- contractors: a contractor user sees only its own contractor; admins manage them.
select pg_temp.policy('contractors', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('contractors', 'contractor_own', $p$as restrictive using (
  case when (select app_contractor_id()) is null then true else id = (select app_contractor_id()) end)$p$);
select pg_temp.writes_only_by('contractors', '{admin}');

-- invites: admins only, in every direction, and written in their own name.
select pg_temp.policy('invites', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('invites', 'admins_only', $p$as restrictive using ((select app_role()) = 'admin') with check ((select app_role()) = 'admin')$p$);
select pg_temp.policy('invites', 'created_by_self', $p$as restrictive for insert with check (created_by = (select app_user_id()))$p$);

-- audit_events: any member records what they do, as themselves; admins and finance read the trail.
select pg_temp.policy('audit_events', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('audit_events', 'readers', $p$as restrictive for select using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('audit_events', 'actor_is_self', $p$as restrictive for insert with check (actor_user_id = (select app_user_id()))$p$);

-- ---------------------------------------------------------------------------------------------
-- Engagements, milestones, change orders. The state machines of DESIGN.md section 3 live in
-- backoffice/domain/engagements.py; these triggers refuse the same illegal moves whoever writes.
-- ---------------------------------------------------------------------------------------------

-- The one rounding rule of DESIGN.md section 4 for page totals computed in SQL: round_half_up(amount ×
-- bps / 10000), exactly as backoffice.domain.money.percent_of does it (a test holds the two equal).
create or replace function money_percent_of(p_amount bigint, p_bps integer) returns bigint
language sql immutable strict parallel safe as $$  -- not SECURITY DEFINER; left inlinable
  select div(2::numeric * p_amount * p_bps + 10000, 20000)::bigint
$$;

-- A text cell of an AP export file: empty is NULL (COPY writes it unquoted), and a value a spreadsheet
-- would run as a formula (= + - @, tab, CR first) gets a leading apostrophe.
create or replace function ap_csv_text(p_value text) returns text
language sql immutable parallel safe as $$  -- not SECURITY DEFINER; left inlinable
  select case when p_value ~ '^[=+@\t\r-]' then '''' || p_value else nullif(p_value, '') end
$$;

create or replace function engagements_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_move text;
  v_response_columns text[] := array['status', 'responded_at', 'responded_by', 'decline_reason', 'updated_at'];
begin
  if tg_op = 'INSERT' then
    -- Every engagement starts as a draft written in its creator's own name; only the moves below
    -- take it further (nobody can create one already "accepted").
    if new.status <> 'draft' or num_nonnulls(new.sent_at, new.sent_by, new.responded_at, new.responded_by,
         new.decline_reason, new.completed_at, new.cancelled_at, new.cancel_reason) > 0 then
      raise exception 'a new engagement starts as a draft' using errcode = '23514';
    end if;
    if v_role is not null and new.created_by is distinct from v_user then
      raise exception 'an engagement is created in the name of the user creating it' using errcode = '42501';
    end if;
    return new;
  end if;
  v_move := old.status || '>' || new.status;
  if new.status is distinct from old.status and not v_move = any (array[
       'draft>awaiting_acceptance', 'awaiting_acceptance>active', 'awaiting_acceptance>declined',
       'active>paused', 'paused>active', 'active>completed',
       'draft>cancelled', 'awaiting_acceptance>cancelled', 'active>cancelled', 'paused>cancelled']) then
    raise exception 'an engagement cannot go from % to %', old.status, new.status using errcode = '23514';
  end if;
  if v_role = 'contractor' then
    -- The contractor answers the work request, and changes nothing else.
    if v_move not in ('awaiting_acceptance>active', 'awaiting_acceptance>declined')
       or (to_jsonb(new) - v_response_columns) is distinct from (to_jsonb(old) - v_response_columns) then
      raise exception 'a contractor can only accept or decline a work request' using errcode = '42501';
    end if;
  elsif v_role is not null and v_move in ('awaiting_acceptance>active', 'awaiting_acceptance>declined') then
    raise exception 'only the contractor accepts or declines a work request' using errcode = '42501';
  end if;
  -- Who is recorded is who acted, and when is the database's clock.
  if v_role is not null and ((new.sent_by is distinct from old.sent_by and new.sent_by is distinct from v_user)
      or (new.responded_by is distinct from old.responded_by and new.responded_by is distinct from v_user)
      or new.created_by is distinct from old.created_by) then
    raise exception 'a move is recorded in the name of the user making it' using errcode = '42501';
  end if;
  if v_role is not null and new.status = old.status
     and (new.sent_at, new.sent_by, new.responded_at, new.responded_by, new.decline_reason, new.completed_at,
          new.cancelled_at, new.cancel_reason)
         is distinct from (old.sent_at, old.sent_by, old.responded_at, old.responded_by, old.decline_reason,
                           old.completed_at, old.cancelled_at, old.cancel_reason) then
    raise exception 'who and when of a move are recorded by the move itself' using errcode = '42501';
  end if;
  if new.sent_at is distinct from old.sent_at then new.sent_at := now(); end if;
  if new.responded_at is distinct from old.responded_at then new.responded_at := now(); end if;
  if new.completed_at is distinct from old.completed_at then new.completed_at := now(); end if;
  if new.cancelled_at is distinct from old.cancelled_at then new.cancelled_at := now(); end if;
  -- What the contractor was sent is what they accept: the terms are fixed once the request is out.
  if old.status <> 'draft'
     and (new.contractor_id, new.currency, new.retainage_bps, new.payment_terms_days, new.service_fee_bps, new.billing_mode)
         is distinct from (old.contractor_id, old.currency, old.retainage_bps, old.payment_terms_days, old.service_fee_bps, old.billing_mode) then
    raise exception 'the terms of an engagement are fixed once its work request is sent' using errcode = '23514';
  end if;
  return new;
end
$$;

create or replace function milestones_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_engagement_status text;
  v_latest record;
begin
  select e.status into v_engagement_status from public.engagements e
   where e.id = case when tg_op = 'DELETE' then old.engagement_id else new.engagement_id end;
  if tg_op = 'INSERT' then
    if new.status <> 'planned' then
      raise exception 'a new milestone starts planned' using errcode = '23514';
    end if;
    if v_engagement_status not in ('draft', 'active', 'paused') then
      raise exception 'milestones can be added to a draft, or by change order to an active or paused engagement'
        using errcode = '23514';
    end if;
    return new;
  end if;
  if tg_op = 'DELETE' then
    if v_engagement_status <> 'draft' or old.status <> 'planned' then
      raise exception 'only a draft''s milestones can be removed; later, cancel them by change order' using errcode = '23514';
    end if;
    return old;
  end if;
  if old.status in ('approved', 'cancelled') and (to_jsonb(new) - 'updated_at') is distinct from (to_jsonb(old) - 'updated_at') then
    raise exception 'milestone is % and cannot be changed', old.status using errcode = '23514';
  end if;
  if new.engagement_id is distinct from old.engagement_id or new.org_id is distinct from old.org_id then
    raise exception 'a milestone stays with its engagement' using errcode = '23514';
  end if;
  if new.status is distinct from old.status
     and not (old.status || '>' || new.status) = any (array['planned>submitted', 'submitted>planned', 'submitted>approved', 'planned>cancelled']) then
    raise exception 'a milestone cannot go from % to %', old.status, new.status using errcode = '23514';
  end if;
  if public.app_role() = 'contractor'
     and ((old.status || '>' || new.status) <> 'planned>submitted'
          or (to_jsonb(new) - array['status', 'updated_at']) is distinct from (to_jsonb(old) - array['status', 'updated_at'])) then
    raise exception 'a contractor only marks a planned milestone submitted, with its evidence' using errcode = '42501';
  end if;
  if v_engagement_status in ('awaiting_acceptance', 'completed', 'declined', 'cancelled')
     and (to_jsonb(new) - array['updated_at', 'contractor_id']) is distinct from (to_jsonb(old) - array['updated_at', 'contractor_id']) then
    raise exception 'the milestones of an engagement that is % cannot be changed', replace(v_engagement_status, '_', ' ')
      using errcode = '23514';
  end if;
  if new.status is distinct from old.status and (
       (new.status = 'submitted' and v_engagement_status <> 'active')
       or v_engagement_status not in ('active', 'paused')) then
    raise exception 'work is submitted only on an active engagement, and reviewed only on an active or paused one'
      using errcode = '23514';
  end if;
  -- Work moves only with its evidence and its decision (DESIGN.md section 3): submitted with a submission
  -- that awaits review; approved by an approving review; back to planned by a dispute or route-back partial.
  if new.status is distinct from old.status and new.status <> 'cancelled' then
    select s.id, r.decision, r.partial_policy, r.approved_amount_minor
      into v_latest from public.submissions s left join public.reviews r on r.submission_id = s.id
     where s.milestone_id = new.id order by s.revision desc limit 1;
    if not coalesce((case old.status || '>' || new.status
             when 'planned>submitted' then v_latest.id is not null and v_latest.decision is null
             when 'submitted>planned' then v_latest.decision = 'dispute'
                                           or (v_latest.decision = 'partial' and v_latest.partial_policy = 'route_back')
             when 'submitted>approved' then v_latest.decision = 'approve'
                                            or (v_latest.decision = 'partial' and v_latest.partial_policy = 'split'
                                                and new.amount_minor = v_latest.approved_amount_minor)
             else false end), false) then
      raise exception 'a milestone goes from % to % only with a submission and its review', old.status, new.status
        using errcode = '23514';
    end if;
  end if;
  return new;
end
$$;

do $$
begin
  if to_regclass('public.engagements') is not null then
    drop trigger if exists engagements_guard on public.engagements;
    create trigger engagements_guard before insert or update on public.engagements
      for each row execute function engagements_guard();
  end if;
  if to_regclass('public.milestones') is not null then
    drop trigger if exists milestones_guard on public.milestones;
    create trigger milestones_guard before insert or update or delete on public.milestones
      for each row execute function milestones_guard();
  end if;
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

-- engagements: staff create and edit them; the contractor's user answers the work request (the guard
-- above limits that update to the answer). Nobody deletes one: it is cancelled.
select pg_temp.contractor_scoped('engagements');
-- A contractor sees an engagement once its work request is sent, not while staff are drafting it.
select pg_temp.policy('engagements', 'contractor_sent', $p$as restrictive for select using (
  case when (select app_contractor_id()) is null then true else sent_at is not null end)$p$);
select pg_temp.policy('engagements', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) in ('admin', 'owner'))$p$);
select pg_temp.policy('engagements', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'owner', 'contractor')) with check ((select app_role()) in ('admin', 'owner', 'contractor'))$p$);

-- milestones: staff write them (directly in a draft, by change order later). A contractor sees the
-- milestones of engagements whose work request was sent (an id array built once per statement).
create or replace function app_sent_engagement_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select coalesce(array_agg(e.id), '{}') from public.engagements e
   where e.org_id = public.app_org_id() and e.contractor_id = public.app_contractor_id() and e.sent_at is not null
$$;
select pg_temp.contractor_scoped('milestones');
select pg_temp.policy('milestones', 'contractor_sent', $p$as restrictive for select using (
  case when (select app_contractor_id()) is null then true else engagement_id = any ((select app_sent_engagement_ids())::uuid[]) end)$p$);
-- Staff write milestones; a contractor's user updates one only to mark it submitted (the guard above
-- refuses anything else, and wants the submission that goes with it).
select pg_temp.writes_only_by('milestones', '{admin,owner}');
select pg_temp.policy('milestones', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'owner', 'contractor')) with check ((select app_role()) in ('admin', 'owner', 'contractor'))$p$);

-- change orders and their lines: written once by staff, never changed (no UPDATE or DELETE grant).
select pg_temp.contractor_scoped('change_orders');
select pg_temp.writes_only_by('change_orders', '{admin,owner}');
select pg_temp.policy('change_orders', 'created_by_self', $p$as restrictive for insert with check (created_by = (select app_user_id()))$p$);
select pg_temp.contractor_scoped('change_order_lines');
select pg_temp.writes_only_by('change_order_lines', '{admin,owner}');

-- ---------------------------------------------------------------------------------------------
-- Evidence and review (DESIGN.md sections 3 and 5). The contractor's user submits work with evidence
-- for its own milestones; the engagement's project owner or an admin decides, once, on the latest
-- revision. Everything here is insert-only for the app role. The guards are SECURITY DEFINER so that
-- what they check (a newer revision, an earlier review) is never hidden from them by a policy.
-- ---------------------------------------------------------------------------------------------

create or replace function submissions_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_milestone public.milestones;
  v_engagement_status text;
  v_previous record;
begin
  -- Refuse another organization's or contractor's row before reading anything, so that the error
  -- never tells a caller about rows its policies hide.
  if v_role is not null and (v_role <> 'contractor' or new.org_id is distinct from public.app_org_id()
                             or new.contractor_id is distinct from public.app_contractor_id()
                             or new.submitted_by is distinct from public.app_user_id()) then
    raise exception 'only the contractor''s user submits work, in its own name' using errcode = '42501';
  end if;
  select * into v_milestone from public.milestones m where m.id = new.milestone_id;
  select e.status into v_engagement_status from public.engagements e where e.id = v_milestone.engagement_id;
  if v_engagement_status is distinct from 'active' then
    raise exception 'work is submitted only on an active engagement' using errcode = '23514';
  end if;
  if v_milestone.status <> 'planned' then
    raise exception 'work is submitted for a planned milestone; this one is %', v_milestone.status using errcode = '23514';
  end if;
  select s.revision, r.decision into v_previous from public.submissions s
    left join public.reviews r on r.submission_id = s.id
   where s.milestone_id = new.milestone_id order by s.revision desc limit 1;
  if new.revision <> coalesce(v_previous.revision, 0) + 1 then
    raise exception 'the next revision of this milestone is %', coalesce(v_previous.revision, 0) + 1 using errcode = '23514';
  end if;
  if v_previous.revision is not null and v_previous.decision is null then
    raise exception 'revision % is still awaiting review', v_previous.revision using errcode = '23514';
  end if;
  new.submitted_at := now();
  return new;
end
$$;

-- At commit: a submission carries at least one file or link, and its milestone went with it to submitted.
create or replace function submissions_have_evidence() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if jsonb_array_length(new.links) = 0 and not exists (select 1 from public.evidence_files f where f.submission_id = new.id) then
    raise exception 'a submission carries at least one file or link' using errcode = '23514';
  end if;
  if (select m.status from public.milestones m where m.id = new.milestone_id) = 'planned'
     and not exists (select 1 from public.reviews r where r.submission_id = new.id) then
    raise exception 'a submission marks its milestone submitted in the same transaction' using errcode = '23514';
  end if;
  return null;
end
$$;

-- At commit: the milestone moved as its review decided (approved, or back to planned).
create or replace function reviews_moved_milestone() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if (select m.status from public.milestones m where m.id = new.milestone_id) = 'submitted'
     and not exists (select 1 from public.submissions s, public.submissions r
                      where r.id = new.submission_id and s.milestone_id = r.milestone_id and s.revision > r.revision) then
    raise exception 'a review moves its milestone (approved, or back to the contractor) in the same transaction' using errcode = '23514';
  end if;
  -- Approval is the only door money leaves by, and it always opens one: an approving review
  -- authorizes its payment (an invoice) in the same transaction.
  if (new.decision = 'approve' or new.partial_policy = 'split') and to_regclass('public.invoices') is not null
     and not exists (select 1 from public.invoices i where i.review_id = new.id) then
    raise exception 'an approval authorizes its payment (an invoice) in the same transaction' using errcode = '23514';
  end if;
  return null;
end
$$;

-- At commit: a file's stored bytes are as many as its recorded size.
create or replace function evidence_files_complete() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if new.size_bytes is distinct from (select sum(octet_length(c.data)) from public.evidence_chunks c where c.file_id = new.id) then
    raise exception 'the stored bytes of % do not add up to its size', new.file_name using errcode = '23514';
  end if;
  return null;
end
$$;

create or replace function reviews_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_submission public.submissions;
  v_milestone public.milestones;
  v_engagement public.engagements;
  v_policy text;
begin
  if v_role is not null and (v_role not in ('admin', 'owner') or new.org_id is distinct from public.app_org_id()) then
    raise exception 'only the engagement''s project owner or an admin decides' using errcode = '42501';
  end if;
  select * into v_submission from public.submissions s where s.id = new.submission_id;
  select * into v_milestone from public.milestones m where m.id = v_submission.milestone_id;
  select * into v_engagement from public.engagements e where e.id = v_milestone.engagement_id;
  if new.milestone_id is distinct from v_submission.milestone_id then
    raise exception 'a review is of the milestone its submission is for' using errcode = '23514';
  end if;
  if exists (select 1 from public.submissions s where s.milestone_id = v_submission.milestone_id and s.revision > v_submission.revision) then
    raise exception 'only the latest revision of a milestone is reviewed' using errcode = '23514';
  end if;
  if v_milestone.status <> 'submitted' then
    raise exception 'the milestone is not awaiting review (it is %)', v_milestone.status using errcode = '23514';
  end if;
  if v_engagement.status not in ('active', 'paused') then
    raise exception 'work is reviewed on an active or paused engagement' using errcode = '23514';
  end if;
  if v_role is not null then
    if not (v_role = 'admin' or (v_role = 'owner' and v_engagement.owner_user_id = v_user)) then
      raise exception 'only the engagement''s project owner or an admin decides' using errcode = '42501';
    end if;
    if new.reviewed_by is distinct from v_user then
      raise exception 'a decision is recorded in the name of the user making it' using errcode = '42501';
    end if;
  end if;
  if new.milestone_amount_minor is distinct from v_milestone.amount_minor then
    raise exception 'the milestone''s amount changed since the review began' using errcode = '23514';
  end if;
  select o.partial_policy into v_policy from public.organizations o where o.id = new.org_id;
  if new.partial_policy is distinct from v_policy and new.decision = 'partial' then
    raise exception 'a partial decision follows the organization''s policy (%)', v_policy using errcode = '23514';
  end if;
  if new.evidence_sha256 is distinct from (select coalesce(array_agg(f.sha256 order by f.position), '{}')
                                            from public.evidence_files f where f.submission_id = new.submission_id) then
    raise exception 'a review records the hashes of the evidence of its submission' using errcode = '23514';
  end if;
  new.reviewed_at := now();
  return new;
end
$$;

do $$
begin
  if to_regclass('public.reviews') is not null then
    drop trigger if exists submissions_guard on public.submissions;
    create trigger submissions_guard before insert on public.submissions
      for each row execute function submissions_guard();
    drop trigger if exists submissions_have_evidence on public.submissions;
    create constraint trigger submissions_have_evidence after insert on public.submissions
      deferrable initially deferred for each row execute function submissions_have_evidence();
    drop trigger if exists evidence_files_complete on public.evidence_files;
    create constraint trigger evidence_files_complete after insert on public.evidence_files
      deferrable initially deferred for each row execute function evidence_files_complete();
    drop trigger if exists reviews_guard on public.reviews;
    create trigger reviews_guard before insert on public.reviews
      for each row execute function reviews_guard();
    drop trigger if exists reviews_moved_milestone on public.reviews;
    create constraint trigger reviews_moved_milestone after insert on public.reviews
      deferrable initially deferred for each row execute function reviews_moved_milestone();
  end if;
end
$$;

-- submissions: the contractor's user writes its own; staff read all of the org's.
select pg_temp.contractor_scoped('submissions');
select pg_temp.writes_only_by('submissions', '{contractor}');
-- evidence: written by the contractor's user in the transaction that creates its submission, never later.
select pg_temp.contractor_scoped('evidence_files');
select pg_temp.writes_only_by('evidence_files', '{contractor}');
select pg_temp.policy('evidence_files', 'with_its_submission', $p$as restrictive for insert with check (exists (
  select 1 from public.submissions s where s.id = submission_id and s.submitted_at = now() and s.submitted_by = (select app_user_id())))$p$);
select pg_temp.contractor_scoped('evidence_chunks');
select pg_temp.writes_only_by('evidence_chunks', '{contractor}');
select pg_temp.policy('evidence_chunks', 'with_its_submission', $p$as restrictive for insert with check (exists (
  select 1 from public.evidence_files f join public.submissions s on s.id = f.submission_id
   where f.id = file_id and s.submitted_at = now() and s.submitted_by = (select app_user_id())))$p$);
-- reviews: staff decide in their own name (the guard narrows owners to their engagements); the
-- contractor reads the decisions on its work.
select pg_temp.contractor_scoped('reviews');
select pg_temp.writes_only_by('reviews', '{admin,owner}');
select pg_temp.policy('reviews', 'reviewed_by_self', $p$as restrictive for insert with check (reviewed_by = (select app_user_id()))$p$);

-- ---------------------------------------------------------------------------------------------
-- Money (DESIGN.md sections 3 and 4): invoices (payment authorizations), payments, AP export
-- batches and the ledger. The services compute every amount with backoffice.domain; these guards
-- recompute them from the engagement's terms and refuse a mismatch, whoever writes. Pay-once is in
-- the unique constraints of migration 0004.
-- ---------------------------------------------------------------------------------------------

-- The next number of a per-organization counter. The row stays locked until the caller's transaction
-- ends, so numbers are gapless: a rolled-back transaction gives its number back.
create or replace function next_org_number(p_org uuid, p_counter text) returns bigint
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  insert into public.org_counters as c (org_id, counter, last_value) values (p_org, p_counter, 1)
  on conflict (org_id, counter) do update set last_value = c.last_value + 1
  returning last_value
$$;
revoke all on function next_org_number(uuid, text) from public;

create or replace function invoices_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_engagement public.engagements;
  v_review public.reviews;
  v_milestone_amount bigint;
  v_released boolean;
  v_gross bigint;
begin
  if v_role is not null and (v_role not in ('admin', 'owner') or new.org_id is distinct from public.app_org_id()
                             or new.authorized_by is distinct from v_user) then
    raise exception 'a payment is authorized by the engagement''s project owner or an admin, in their own name'
      using errcode = '42501';
  end if;
  -- Held until commit: approvals and the release of one engagement take turns (the release sums
  -- what the approvals withheld).
  select * into v_engagement from public.engagements e where e.id = new.engagement_id for update;
  if v_role = 'owner' and v_engagement.owner_user_id is distinct from v_user then
    raise exception 'only the engagement''s project owner or an admin authorizes its payments' using errcode = '42501';
  end if;
  if new.status <> 'approved' or num_nonnulls(new.batch_id, new.exported_at, new.paid_at) > 0 then
    raise exception 'a new invoice starts approved' using errcode = '23514';
  end if;
  if new.currency is distinct from v_engagement.currency then
    raise exception 'an invoice is in its engagement''s currency (%)', v_engagement.currency using errcode = '23514';
  end if;
  v_released := exists (select 1 from public.invoices i where i.engagement_id = new.engagement_id and i.kind = 'retainage_release');
  if new.kind = 'milestone' then
    select * into v_review from public.reviews r where r.id = new.review_id;
    select m.amount_minor into v_milestone_amount from public.milestones m where m.id = new.milestone_id;
    if v_review.milestone_id is distinct from new.milestone_id
       or not (v_review.decision = 'approve' or (v_review.decision = 'partial' and v_review.partial_policy = 'split')) then
      raise exception 'a milestone invoice needs an approving review of that milestone' using errcode = '23514';
    end if;
    if exists (select 1 from public.submissions s, public.submissions r
                where r.id = v_review.submission_id and s.milestone_id = r.milestone_id and s.revision > r.revision) then
      raise exception 'only the review of the latest revision authorizes payment' using errcode = '23514';
    end if;
    if new.authorized_by is distinct from v_review.reviewed_by then
      raise exception 'a payment is authorized by the person who approved the work' using errcode = '23514';
    end if;
    v_gross := coalesce(v_review.approved_amount_minor, v_review.milestone_amount_minor);
    if new.gross_minor is distinct from v_gross or v_milestone_amount is distinct from v_gross then
      raise exception 'the invoice''s gross is the approved amount (%)', v_gross using errcode = '23514';
    end if;
    -- Once the engagement's retainage is released, later approvals withhold none: the one release per
    -- engagement could never pay it back (DESIGN.md section 4, invariant 3).
    if new.retainage_bps is distinct from (case when v_released then 0 else v_engagement.retainage_bps end)
       or new.fee_bps is distinct from v_engagement.service_fee_bps then
      raise exception 'an invoice withholds the engagement''s retainage and charges its service fee' using errcode = '23514';
    end if;
    new.issued_on := (v_review.reviewed_at at time zone 'UTC')::date;
  else
    if v_engagement.status <> 'completed' and new.release_reason is null then
      raise exception 'retainage is released once the engagement is completed, or earlier with a reason' using errcode = '23514';
    end if;
    v_gross := (select coalesce(sum(i.retainage_minor), 0) from public.invoices i
                 where i.engagement_id = new.engagement_id and i.kind = 'milestone');
    if v_gross = 0 then
      raise exception 'this engagement holds no retainage to release' using errcode = '23514';
    end if;
    if new.gross_minor is distinct from v_gross or new.retainage_bps <> 0 or new.fee_bps <> 0 then
      raise exception 'a release pays the retainage held (%), with nothing withheld and no fee', v_gross using errcode = '23514';
    end if;
    new.issued_on := (now() at time zone 'UTC')::date;
  end if;
  if new.retainage_minor is distinct from public.money_percent_of(new.gross_minor, new.retainage_bps)
     or new.fee_minor is distinct from public.money_percent_of(new.gross_minor, new.fee_bps) then
    raise exception 'retainage and fee are round_half_up(gross × bps / 10000)' using errcode = '23514';
  end if;
  new.due_date := new.issued_on + v_engagement.payment_terms_days;
  new.number := public.next_org_number(new.org_id, 'invoice');
  new.invoice_number := (select o.invoice_prefix from public.organizations o where o.id = new.org_id)
                        || '-' || lpad(new.number::text, 6, '0');
  new.authorized_at := now();
  new.updated_at := now();
  return new;
end
$$;

-- An invoice's amounts, dates and parties never change (the app role may update only its status
-- columns); its status moves approved -> exported (into a live batch written in this transaction)
-- -> approved (the batch voided) and approved/exported -> paid (with its payment record).
-- Not SECURITY DEFINER and no SET clause: it runs once per row of a 100,000-row export, and only
-- finance and admins update invoices, who may read the batches and payments it checks.
drop function if exists invoices_move_guard() cascade;
create function invoices_move_guard() returns trigger
language plpgsql as $$
begin
  if (new.id, new.org_id, new.contractor_id, new.engagement_id, new.kind, new.milestone_id, new.review_id, new.number,
      new.invoice_number, new.description, new.currency, new.gross_minor, new.retainage_bps, new.retainage_minor,
      new.net_minor, new.fee_bps, new.fee_minor, new.total_minor, new.issued_on, new.due_date, new.authorized_by,
      new.authorized_at, new.release_reason)
     is distinct from
     (old.id, old.org_id, old.contractor_id, old.engagement_id, old.kind, old.milestone_id, old.review_id, old.number,
      old.invoice_number, old.description, old.currency, old.gross_minor, old.retainage_bps, old.retainage_minor,
      old.net_minor, old.fee_bps, old.fee_minor, old.total_minor, old.issued_on, old.due_date, old.authorized_by,
      old.authorized_at, old.release_reason) then
    raise exception 'an invoice''s amounts, dates and parties never change; only its payment status moves' using errcode = '23514';
  end if;
  case old.status || '>' || new.status
    when 'approved>exported' then
      if not exists (select 1 from public.ap_export_batches b
                      where b.id = new.batch_id and b.status = 'live' and b.created_at = now()) then
        raise exception 'an invoice is exported into a live batch written in the same transaction' using errcode = '23514';
      end if;
      new.exported_at := now();
    when 'exported>approved' then
      if new.batch_id is not null or not exists (select 1 from public.ap_export_batches b
                                                  where b.id = old.batch_id and b.status = 'voided') then
        raise exception 'an exported invoice returns to approved only when its batch is voided' using errcode = '23514';
      end if;
      new.exported_at := null;
    when 'approved>paid', 'exported>paid' then
      if (new.batch_id, new.exported_at) is distinct from (old.batch_id, old.exported_at)
         or not exists (select 1 from public.payments p where p.invoice_id = new.id and p.paid_at = new.paid_at) then
        raise exception 'an invoice is paid with its payment record' using errcode = '23514';
      end if;
    else
      if new.status is distinct from old.status then
        raise exception 'an invoice cannot go from % to %', old.status, new.status using errcode = '23514';
      end if;
      if (new.batch_id, new.exported_at, new.paid_at) is distinct from (old.batch_id, old.exported_at, old.paid_at) then
        raise exception 'an invoice''s batch and payment change only with its status' using errcode = '23514';
      end if;
  end case;
  new.updated_at := now();
  return new;
end
$$;

create or replace function payments_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_invoice public.invoices;
begin
  if v_role is not null and (v_role not in ('admin', 'finance') or new.org_id is distinct from public.app_org_id()
                             or new.recorded_by is distinct from public.app_user_id()) then
    raise exception 'payments are recorded by finance or an admin, in their own name' using errcode = '42501';
  end if;
  select * into v_invoice from public.invoices i where i.id = new.invoice_id for update;
  if v_invoice.status not in ('approved', 'exported') then
    raise exception 'invoice % is %; only an approved or exported invoice is paid', v_invoice.invoice_number, v_invoice.status
      using errcode = '23514';
  end if;
  if (new.amount_minor, new.currency) is distinct from (v_invoice.net_minor, v_invoice.currency) then
    raise exception 'a payment is the invoice''s net payable (% %)', v_invoice.net_minor, v_invoice.currency using errcode = '23514';
  end if;
  if new.batch_id is not null and new.batch_id is distinct from v_invoice.batch_id then
    raise exception 'a batch payment is for an invoice in that batch' using errcode = '23514';
  end if;
  if new.paid_at < v_invoice.issued_on or new.paid_at > (now() at time zone 'UTC')::date + 1 then
    raise exception 'a payment is dated between its authorization (%) and today', v_invoice.issued_on using errcode = '23514';
  end if;
  if v_invoice.authorized_by = new.recorded_by
     and (select o.segregation_of_duties from public.organizations o where o.id = new.org_id) then
    raise exception 'segregation of duties: whoever authorized a payment cannot record it' using errcode = '42501';
  end if;
  new.recorded_at := now();
  return new;
end
$$;

-- At commit: a payment's invoice is paid, on the payment's date.
create or replace function payments_paid_invoice() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if not exists (select 1 from public.invoices i where i.id = new.invoice_id and i.status = 'paid' and i.paid_at = new.paid_at) then
    raise exception 'a payment marks its invoice paid in the same transaction' using errcode = '23514';
  end if;
  return null;
end
$$;

create or replace function ap_export_batches_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
begin
  if tg_op = 'INSERT' then
    if v_role is not null and (v_role not in ('admin', 'finance') or new.org_id is distinct from public.app_org_id()
                               or new.created_by is distinct from v_user) then
      raise exception 'AP export batches are created by finance or an admin, in their own name' using errcode = '42501';
    end if;
    if new.status <> 'live' or num_nonnulls(new.voided_by, new.voided_at, new.void_reason) > 0 then
      raise exception 'a new batch starts live' using errcode = '23514';
    end if;
    if num_nonnulls(new.size_bytes, new.sha256, new.row_count, new.total_minor, new.invoice_ids) > 0 then
      raise exception 'a new batch is sealed once its file is written' using errcode = '23514';
    end if;
    new.number := public.next_org_number(new.org_id, 'ap_batch');
    new.created_at := now();
    return new;
  end if;
  -- Sealing: once, in the transaction that created the batch, nothing else changing.
  if old.sha256 is null then
    if old.created_at <> now() or new.sha256 is null
       or (to_jsonb(new) - array['size_bytes', 'sha256', 'row_count', 'total_minor', 'invoice_ids'])
          is distinct from (to_jsonb(old) - array['size_bytes', 'sha256', 'row_count', 'total_minor', 'invoice_ids']) then
      raise exception 'a batch is sealed once, by the transaction that writes it' using errcode = '23514';
    end if;
    return new;
  end if;
  if (to_jsonb(new) - array['status', 'voided_by', 'voided_at', 'void_reason'])
     is distinct from (to_jsonb(old) - array['status', 'voided_by', 'voided_at', 'void_reason'])
     or old.status <> 'live' or new.status <> 'voided' then
    raise exception 'a batch''s file never changes; a live batch can only be voided' using errcode = '23514';
  end if;
  if v_role is not null and (v_role <> 'admin' or new.voided_by is distinct from v_user) then
    raise exception 'only an admin voids a batch, in their own name' using errcode = '42501';
  end if;
  if exists (select 1 from public.invoices i where i.batch_id = old.id and i.status = 'paid') then
    raise exception 'batch % has paid invoices and cannot be voided', old.number using errcode = '23514';
  end if;
  new.voided_at := now();
  return new;
end
$$;

-- At commit: a new batch's stored bytes hash to its sha256, and it holds exactly the invoices it names,
-- exported, in its currency, adding up to its total. A voided batch holds none.
create or replace function ap_export_batches_complete() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_batch public.ap_export_batches;
  v_bytes bytea;
  v_count bigint;
  v_total numeric;
begin
  -- A deferred trigger's NEW is the row as the event wrote it; the batch as committed is read here.
  select * into v_batch from public.ap_export_batches b where b.id = new.id;
  if v_batch.status = 'voided' then
    if exists (select 1 from public.invoices i where i.batch_id = v_batch.id) then
      raise exception 'a voided batch returns its invoices to approved in the same transaction' using errcode = '23514';
    end if;
    return null;
  end if;
  if tg_op = 'UPDATE' then
    return null;  -- the seal: checked by the insert's own event, at the same commit
  end if;
  if v_batch.sha256 is null then
    raise exception 'batch % was never sealed with its file', v_batch.number using errcode = '23514';
  end if;
  select string_agg(c.data, ''::bytea order by c.chunk_no) into v_bytes from public.ap_export_chunks c where c.batch_id = v_batch.id;
  if v_bytes is null or octet_length(v_bytes) <> v_batch.size_bytes or encode(sha256(v_bytes), 'hex') <> v_batch.sha256 then
    raise exception 'the stored file of batch % does not match its size and sha256', v_batch.number using errcode = '23514';
  end if;
  -- Every invoice pointing at the batch counts, so one in another currency (or not exported) fails it.
  select count(*), coalesce(sum(i.net_minor), 0) into v_count, v_total from public.invoices i
   where i.org_id = v_batch.org_id and i.batch_id = v_batch.id;
  if v_count <> v_batch.row_count or v_total <> v_batch.total_minor
     or exists (select 1 from public.invoices i where i.org_id = v_batch.org_id and i.batch_id = v_batch.id
                   and (i.status <> 'exported' or i.currency <> v_batch.currency))
     or exists (select unnest(v_batch.invoice_ids) except select i.id from public.invoices i
                 where i.org_id = v_batch.org_id and i.batch_id = v_batch.id) then
    raise exception 'batch % must hold exactly its % invoices, exported, in %, totalling %', v_batch.number, v_batch.row_count,
      v_batch.currency, v_batch.total_minor using errcode = '23514';
  end if;
  return null;
end
$$;

-- At commit: every ledger transaction sums to zero, in one currency.
create or replace function ledger_entries_balanced() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if (select sum(l.amount_minor) <> 0 or count(distinct l.currency) <> 1
        from public.ledger_entries l where l.org_id = new.org_id and l.txn_id = new.txn_id) then
    raise exception 'ledger transaction % does not balance', new.txn_id using errcode = '23514';
  end if;
  return null;
end
$$;

create or replace function ledger_entries_reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception 'ledger_entries is append-only: % is not allowed', tg_op using errcode = '42501';
end
$$;

do $$
begin
  if to_regclass('public.invoices') is not null then
    drop trigger if exists invoices_guard on public.invoices;
    create trigger invoices_guard before insert on public.invoices for each row execute function invoices_guard();
    drop trigger if exists invoices_move_guard on public.invoices;
    create trigger invoices_move_guard before update on public.invoices for each row execute function invoices_move_guard();
    drop trigger if exists payments_guard on public.payments;
    create trigger payments_guard before insert on public.payments for each row execute function payments_guard();
    drop trigger if exists payments_paid_invoice on public.payments;
    create constraint trigger payments_paid_invoice after insert on public.payments
      deferrable initially deferred for each row execute function payments_paid_invoice();
    drop trigger if exists ap_export_batches_guard on public.ap_export_batches;
    create trigger ap_export_batches_guard before insert or update on public.ap_export_batches
      for each row execute function ap_export_batches_guard();
    drop trigger if exists ap_export_batches_complete on public.ap_export_batches;
    create constraint trigger ap_export_batches_complete after insert or update on public.ap_export_batches
      deferrable initially deferred for each row execute function ap_export_batches_complete();
    drop trigger if exists ledger_entries_balanced on public.ledger_entries;
    create constraint trigger ledger_entries_balanced after insert on public.ledger_entries
      deferrable initially deferred for each row execute function ledger_entries_balanced();
    drop trigger if exists ledger_entries_append_only on public.ledger_entries;
    create trigger ledger_entries_append_only before update or delete on public.ledger_entries
      for each row execute function ledger_entries_reject_change();
  end if;
end
$$;

-- invoices: staff read the org's; a contractor reads its own. The approver (owner or admin) writes
-- them in their own name; finance and admins move their status (column grants below).
select pg_temp.contractor_scoped('invoices');
select pg_temp.writes_only_by('invoices', '{admin,owner}');
select pg_temp.policy('invoices', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('invoices', 'authorized_by_self', $p$as restrictive for insert with check (authorized_by = (select app_user_id()))$p$);
-- payments: a contractor reads its own; finance and admins record them in their own name.
select pg_temp.contractor_scoped('payments');
select pg_temp.writes_only_by('payments', '{admin,finance}');
select pg_temp.policy('payments', 'recorded_by_self', $p$as restrictive for insert with check (recorded_by = (select app_user_id()))$p$);
-- AP export batches and their files: finance and admins only, in every direction.
select pg_temp.policy('ap_export_batches', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ap_export_batches', 'finance_only', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('ap_export_chunks', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ap_export_chunks', 'finance_only', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('ap_export_chunks', 'with_its_batch', $p$as restrictive for insert with check (exists (
  select 1 from public.ap_export_batches b where b.id = batch_id and b.created_at = now() and b.created_by = (select app_user_id())))$p$);
-- ledger: finance and admins read it; whoever performs a money event writes its lines (insert only).
select pg_temp.policy('ledger_entries', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('ledger_entries', 'readers', $p$as restrictive for select using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.writes_only_by('ledger_entries', '{admin,owner,finance}');

do $$
begin
  if to_regclass('public.org_counters') is not null then
    alter table public.org_counters enable row level security, force row level security;
  end if;
end
$$;

-- login_throttle: no policy at all, so nobody but the SECURITY DEFINER functions above reads it.
do $$
begin
  if to_regclass('public.login_throttle') is not null then
    alter table public.login_throttle enable row level security, force row level security;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Notifications and documents (DESIGN.md section 6).
-- ---------------------------------------------------------------------------------------------

-- email_messages, the outbox. An organization's messages are written by its worker and its admins
-- (invitations) and read by admins only: a message may hold a sign-in link. An account message
-- (a password reset: no org) belongs to the one account it is for, which the request acts as.
select pg_temp.policy('email_messages', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('email_messages', 'own_account_messages', $p$using (org_id is null and recipient_user_id = (select app_user_id()))
  with check (org_id is null and recipient_user_id = (select app_user_id()) and event = 'password_reset')$p$);
select pg_temp.policy('email_messages', 'admins_only', $p$as restrictive
  using (org_id is null or (select app_role()) = 'admin') with check (org_id is null or (select app_role()) = 'admin')$p$);

-- notifications: each person reads and marks their own; the worker (an admin's reach) writes them.
select pg_temp.policy('notifications', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('notifications', 'own_select', $p$as restrictive for select using (user_id = (select app_user_id()))$p$);
select pg_temp.policy('notifications', 'own_update', $p$as restrictive for update using (user_id = (select app_user_id())) with check (user_id = (select app_user_id()))$p$);
select pg_temp.policy('notifications', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) = 'admin')$p$);

-- documents, the data room: finance and admins only; written once, never changed or deleted.
select pg_temp.policy('documents', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('documents', 'finance_and_admins', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);

create or replace function documents_reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception 'documents are kept as issued: % is not allowed', tg_op using errcode = '42501';
end
$$;

do $$
begin
  if to_regclass('public.documents') is not null then
    drop trigger if exists documents_append_only on public.documents;
    create trigger documents_append_only before update or delete on public.documents
      for each row execute function documents_reject_change();
    drop trigger if exists documents_no_truncate on public.documents;
    create trigger documents_no_truncate before truncate on public.documents
      for each statement execute function documents_reject_change();
  end if;
  -- password_resets: no policy at all; only the functions below touch it.
  if to_regclass('public.password_resets') is not null then
    alter table public.password_resets enable row level security, force row level security;
  end if;
end
$$;

-- Periodic jobs (the review reminder, the finance digest) run once per organization: this is the
-- list of them, and nothing else about them.
create or replace function job_org_ids() returns setof uuid
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select o.id from public.organizations o order by o.id
$$;

-- Start a password reset for an active account that has a password. Returns the account (to address
-- the email) or no row: unknown address, no password yet (they join by invitation), or more than three
-- links asked for in the last hour. Earlier unused links stop working.
create or replace function password_reset_start(p_email text, p_token_hash text)
returns table (user_id uuid, email text, name text)
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_user public.users;
begin
  select * into v_user from public.users u
   where lower(u.email) = lower(p_email) and u.is_active and u.password_hash is not null;
  if not found then
    return;
  end if;
  if (select count(*) from public.password_resets r where r.user_id = v_user.id and r.created_at > now() - interval '1 hour') >= 3 then
    return;
  end if;
  update public.password_resets set used_at = now() where password_resets.user_id = v_user.id and used_at is null;
  insert into public.password_resets (user_id, token_hash) values (v_user.id, p_token_hash);
  return query select v_user.id, v_user.email, v_user.name;
end
$$;

-- Whose unused, unexpired reset link this is (the form shows the address), or no row.
create or replace function password_reset_email(p_token_hash text) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select u.email from public.password_resets r join public.users u on u.id = r.user_id and u.is_active
   where r.token_hash = p_token_hash and r.used_at is null and r.expires_at > now()
$$;

-- Use a reset link once: set the new password, end every session signed in before, lift a sign-in
-- lock. Returns the account, or null for a link that is unknown, used or expired.
create or replace function password_reset_finish(p_token_hash text, p_password_hash text) returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_reset public.password_resets;
begin
  select * into v_reset from public.password_resets r
   where r.token_hash = p_token_hash and r.used_at is null and r.expires_at > now()
   for update;
  if not found or p_password_hash is null or length(p_password_hash) < 20 then
    return null;
  end if;
  update public.users set password_hash = p_password_hash, sessions_revoked_at = now()
   where id = v_reset.user_id and is_active;
  if not found then
    return null;
  end if;
  update public.password_resets set used_at = now() where password_resets.user_id = v_reset.user_id and used_at is null;
  perform public.auth_record_success(v_reset.user_id);
  return v_reset.user_id;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Grants to the app role (name in backoffice.app_role). Table privileges are the first gate, the
-- policies above the second.
-- ---------------------------------------------------------------------------------------------

do $$
declare
  v_app text := current_setting('backoffice.app_role');
  v_fn text;
begin
  execute format('grant usage on schema public to %I', v_app);
  execute format('revoke all on all tables in schema public from %I', v_app);
  execute format('grant select, update on public.organizations to %I', v_app);
  execute format('grant select (id, email, name, is_active, created_at, last_login_at, sessions_revoked_at), update (name, sessions_revoked_at) on public.users to %I', v_app);
  execute format('grant select, insert, update, delete on public.contractors to %I', v_app);
  -- accepted_at is not grantable: only accept_invite() (or the owner, for the first admin) sets it.
  execute format('grant select, delete, insert (id, org_id, user_id, role, contractor_id), update (role, contractor_id) on public.memberships to %I', v_app);
  execute format('grant select, insert (id, org_id, user_id, email, name, token_hash, created_by), update (used_at) on public.invites to %I', v_app);
  execute format('grant select, insert on public.audit_events to %I', v_app);
  -- Tables of later revisions are granted once they exist.
  if to_regclass('public.engagements') is not null then
    execute format('grant select, insert, update on public.engagements to %I', v_app);
    execute format('grant select, insert, update, delete on public.milestones to %I', v_app);
    execute format('grant select, insert on public.change_orders, public.change_order_lines to %I', v_app);
  end if;
  if to_regclass('public.reviews') is not null then
    execute format('grant select, insert on public.submissions, public.evidence_files, public.evidence_chunks, public.reviews to %I', v_app);
  end if;
  if to_regclass('public.invoices') is not null then
    -- An invoice's amounts never change: only its status columns are updatable.
    execute format('grant select, insert, update (status, batch_id, exported_at, paid_at, updated_at) on public.invoices to %I', v_app);
    execute format('grant select, insert on public.payments, public.ap_export_chunks, public.ledger_entries to %I', v_app);
    execute format('grant select, insert, update (size_bytes, sha256, row_count, total_minor, invoice_ids, status, voided_by, voided_at, void_reason) on public.ap_export_batches to %I', v_app);
  end if;
  if to_regclass('public.email_messages') is not null then
    execute format('grant select, insert, update (status, attempts, last_error, provider_id, sent_at, updated_at) on public.email_messages to %I', v_app);
    execute format('grant select, insert, update (read_at) on public.notifications to %I', v_app);
    execute format('grant select, insert on public.documents to %I', v_app);
  end if;
  -- The job queue (procrastinate's schema): the web enqueues, workers take and finish jobs.
  if to_regnamespace('procrastinate') is not null then
    execute format('grant usage on schema procrastinate to %I', v_app);
    execute format('grant select, insert, update, delete on all tables in schema procrastinate to %I', v_app);
    execute format('grant usage, select on all sequences in schema procrastinate to %I', v_app);
    execute format('grant execute on all functions in schema procrastinate to %I', v_app);
  end if;
  if to_regclass('public.password_resets') is not null then
    foreach v_fn in array array['job_org_ids()', 'password_reset_start(text, text)', 'password_reset_email(text)', 'password_reset_finish(text, text)'] loop
      execute format('revoke all on function public.%s from public', v_fn);
      execute format('grant execute on function public.%s to %I', v_fn, v_app);
    end loop;
  end if;
  foreach v_fn in array array[
    'app_user_id()', 'app_membership()', 'app_org_id()', 'app_role()', 'app_contractor_id()', 'my_memberships()',
    'auth_lookup(text)', 'auth_record_failure(text, int, int)', 'auth_record_success(uuid)',
    'invite_user_account(text, text)', 'app_visible_user_ids()', 'app_sent_engagement_ids()', 'invite_details(text)', 'accept_invite(text, text)',
    'money_percent_of(bigint, integer)'
  ] loop
    execute format('revoke all on function public.%s from public', v_fn);
    execute format('grant execute on function public.%s to %I', v_fn, v_app);
  end loop;
end
$$;
