-- Payment controls (issue 18; DESIGN.md sections 3 and 4): approval policies and their steps, each invoice's
-- approvals, delegations and holds. Their policies and grants are here, beside their guards, rather than in
-- sql/rls_policies.sql (which stays under 600 lines); they use its tools (pg_temp.policy() and the grant helpers).
-- The invoice's own moves (pending_approval -> approved | void; nothing exported or paid while held) are in
-- sql/money.sql's guards, which call the functions below.
--
-- The rules are named once in backoffice/domain/approvals.py: applicable_approval_policy() is
-- domain.approvals.applicable_policy, may_approve_step() (sql/rules.sql) is domain.approvals.may_approve;
-- tests/integration/test_controls_parity.py holds each pair equal.

set local check_function_bodies = off;

-- Staff (admins, project owners, finance) read every control of their organization; a contractor's user none.
create or replace function pg_temp.staff_only(p_table text) returns void
language plpgsql as $$
begin
  perform pg_temp.policy(p_table, 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
  perform pg_temp.policy(p_table, 'staff_only', $p$as restrictive using ((select app_role()) in ('admin', 'owner', 'finance'))
    with check ((select app_role()) in ('admin', 'owner', 'finance'))$p$);
end
$$;

-- approval_policies + approval_policy_steps: admins write them; a policy is never changed, only switched off
-- (archived_at), and its steps never change at all (an edit is a new policy that replaces it).
select pg_temp.staff_only('approval_policies');
select pg_temp.policy('approval_policies', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) = 'admin')$p$);
select pg_temp.policy('approval_policies', 'writers_update', $p$as restrictive for update
  using ((select app_role()) = 'admin') with check ((select app_role()) = 'admin')$p$);
select pg_temp.grant_to_app('approval_policies', 'select, insert');
select pg_temp.grant_update_to_app('approval_policies', '{archived_at, archived_by}');
select pg_temp.staff_only('approval_policy_steps');
select pg_temp.policy('approval_policy_steps', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) = 'admin')$p$);
select pg_temp.grant_to_app('approval_policy_steps', 'select, insert');

-- invoice_approvals: written by invoices_approvals_start() (below, the owner's) when an invoice is authorized
-- under a policy; a staff member decides a step (invoice_approvals_guard says whether they may); the worker
-- reads what waits and stamps its reminders.
select pg_temp.staff_only('invoice_approvals');
select pg_temp.grant_to_app('invoice_approvals', 'select');
select pg_temp.grant_update_to_app('invoice_approvals', '{status, decided_by, on_behalf_of, decided_at, reason}');
select pg_temp.grant_to_worker('invoice_approvals', 'select');
select pg_temp.grant_to_worker('invoice_approvals', 'update (reminded_at)');

-- approval_delegations: an approver names a stand-in for a date range, in their own name (or an admin for them);
-- revoked, never deleted.
select pg_temp.staff_only('approval_delegations');
select pg_temp.policy('approval_delegations', 'writers_insert', $p$as restrictive for insert with check (
  user_id = (select app_user_id()) or (select app_role()) = 'admin')$p$);
select pg_temp.policy('approval_delegations', 'writers_update', $p$as restrictive for update
  using (user_id = (select app_user_id()) or (select app_role()) = 'admin')
  with check (user_id = (select app_user_id()) or (select app_role()) = 'admin')$p$);
select pg_temp.grant_to_app('approval_delegations', 'select, insert');
select pg_temp.grant_update_to_app('approval_delegations', '{revoked_at}');
select pg_temp.grant_to_worker('approval_delegations', 'select');

-- holds: finance and admins hold an invoice or a contractor, and release it; every staff member reads them (the
-- invoice page says why it is not payable); the worker reads them before it sends money to a rail.
select pg_temp.staff_only('holds');
select pg_temp.policy('holds', 'writers_insert', $p$as restrictive for insert with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('holds', 'writers_update', $p$as restrictive for update
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.grant_to_app('holds', 'select, insert');
select pg_temp.grant_update_to_app('holds', '{released_by, released_at, release_note}');
select pg_temp.grant_to_worker('holds', 'select');

-- The policy an authorization of p_gross in p_currency starts under: domain.approvals.applicable_policy (the
-- live policy in that currency with the highest minimum the amount reaches), or NULL. The owner's: guards call
-- it while they judge a row, whatever the caller may read.
create or replace function applicable_approval_policy(p_org uuid, p_currency text, p_gross bigint) returns uuid
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select p.id from public.approval_policies p
   where p.org_id = p_org and p.currency = p_currency and p.archived_at is null and p.min_amount_minor <= p_gross
   order by p.min_amount_minor desc limit 1
$$;
revoke all on function applicable_approval_policy(uuid, text, bigint) from public;

-- Everyone who approved an invoice: its authorizer (step 0, the owner's review) and each step's decider and the
-- person they decided for. Segregation of duties keeps them all from recording or sending its payment.
create or replace function invoice_approvers(p_org uuid, p_invoice uuid) returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select array(select i.authorized_by from public.invoices i where i.org_id = p_org and i.id = p_invoice
               -- a task or final invoice: whoever approved each of its tasks (completion billing)
               union select r.reviewed_by from public.invoice_tasks t
                       join public.reviews r on r.org_id = t.org_id and r.milestone_id = t.milestone_id
                      where t.org_id = p_org and t.invoice_id = p_invoice
                        and (r.decision = 'approve' or (r.decision = 'partial' and r.partial_policy = 'split'))
               union select a.decided_by from public.invoice_approvals a
                      where a.org_id = p_org and a.invoice_id = p_invoice and a.status = 'approved'
               union select a.on_behalf_of from public.invoice_approvals a
                      where a.org_id = p_org and a.invoice_id = p_invoice and a.status = 'approved'
                        and a.on_behalf_of is not null)
$$;
revoke all on function invoice_approvers(uuid, uuid) from public;

-- Whether a live hold stands on the invoice or on its contractor: nothing exports or pays it meanwhile.
-- As the caller, like invoices_move_guard that asks it: finance, admins and the worker read every hold of their
-- organization (their policies), and nobody else moves an invoice.
create or replace function invoice_held(p_org uuid, p_invoice uuid, p_contractor uuid) returns boolean
language sql stable set search_path = pg_catalog, pg_temp as $$
  select exists (select 1 from public.holds h
                  where h.org_id = p_org and h.invoice_id = p_invoice and h.released_at is null)
      or exists (select 1 from public.holds h
                  where h.org_id = p_org and h.contractor_id = p_contractor and h.released_at is null)
$$;
revoke all on function invoice_held(uuid, uuid, uuid) from public;
-- invoices_move_guard runs as the caller (finance and admins on the web; the worker recording a rail's payment).
select pg_temp.grant_execute('invoice_held(uuid, uuid, uuid)', true);

-- A staff member of the organization, signed up and active: who a step or a delegation may name.
create or replace function org_staff_member(p_org uuid, p_user uuid) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select m.role from public.memberships m join public.users u on u.id = m.user_id
   where m.org_id = p_org and m.user_id = p_user and m.role in ('admin', 'owner', 'finance')
     and m.accepted_at is not null and u.is_active
$$;
revoke all on function org_staff_member(uuid, uuid) from public;

create or replace function approval_policies_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if public.app_role() is not null and (public.app_role() <> 'admin' or new.org_id is distinct from public.app_org_id()) then
    raise exception 'approval policies are set by an admin' using errcode = '42501';
  end if;
  if tg_op = 'INSERT' then
    if new.archived_at is not null or (public.app_role() is not null and new.created_by is distinct from public.app_user_id()) then
      raise exception 'a policy is written live, in the name of the admin writing it' using errcode = '42501';
    end if;
    new.created_at := now();
    return new;
  end if;
  -- Switched off once, in the admin's own name; nothing else of a policy ever changes.
  if old.archived_at is not null or new.archived_at is null
     or (new.org_id, new.id, new.name, new.currency, new.min_amount_minor, new.created_by, new.created_at)
        is distinct from (old.org_id, old.id, old.name, old.currency, old.min_amount_minor, old.created_by, old.created_at)
     or (public.app_role() is not null and new.archived_by is distinct from public.app_user_id()) then
    raise exception 'a policy never changes; it is switched off, once, by an admin in their own name' using errcode = '23514';
  end if;
  new.archived_at := now();
  return new;
end
$$;
revoke all on function approval_policies_guard() from public;

create or replace function approval_policy_steps_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_person uuid;
begin
  -- A policy's steps are written with it, in the same transaction, and never afterwards.
  if not exists (select 1 from public.approval_policies p
                  where p.org_id = new.org_id and p.id = new.policy_id and p.created_at = now() and p.archived_at is null) then
    raise exception 'a policy''s steps are written with the policy' using errcode = '23514';
  end if;
  foreach v_person in array new.approver_ids loop
    if public.org_staff_member(new.org_id, v_person) is null then
      raise exception 'a step names admins, project owners or finance members of this organization' using errcode = '23514';
    end if;
  end loop;
  return new;
end
$$;
revoke all on function approval_policy_steps_guard() from public;

-- At commit: a new policy has steps 1..n, none missing.
create or replace function approval_policies_steps_check() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_count integer;
  v_max integer;
begin
  select count(*), max(s.step) into v_count, v_max from public.approval_policy_steps s
   where s.org_id = new.org_id and s.policy_id = new.id;
  if v_count = 0 or v_max <> v_count then
    raise exception 'an approval policy has steps 1 to n, at least one' using errcode = '23514';
  end if;
  return null;
end
$$;
revoke all on function approval_policies_steps_check() from public;

-- When an invoice is authorized under a policy (invoices_guard checked it is the one that applies), its steps are
-- copied from the policy: the invoice keeps them whatever the policy becomes.
create or replace function invoices_approvals_start() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into public.invoice_approvals (org_id, invoice_id, step, policy_id, approver_role, approver_ids)
  select new.org_id, new.id, s.step, s.policy_id, s.approver_role, s.approver_ids
    from public.approval_policy_steps s
   where s.org_id = new.org_id and s.policy_id = new.approval_policy_id
   order by s.step;
  if not found then
    raise exception 'approval policy % has no steps', new.approval_policy_id using errcode = '23514';
  end if;
  return null;
end
$$;
revoke all on function invoices_approvals_start() from public;

-- A step is decided once, in order, by a person it names (or their delegate, for them), who has not approved this
-- invoice already, did not submit its work, and is not its contractor's user. The owner's: it reads the invoice's
-- other steps, the delegations and the submissions whatever the caller may read.
create or replace function invoice_approvals_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_invoice public.invoices;
  v_for uuid := new.on_behalf_of;
  v_for_role text;
  v_today date := (now() at time zone 'UTC')::date;
begin
  if (new.org_id, new.invoice_id, new.step, new.policy_id, new.approver_role, new.approver_ids, new.created_at)
     is distinct from (old.org_id, old.invoice_id, old.step, old.policy_id, old.approver_role, old.approver_ids, old.created_at) then
    raise exception 'an approval step''s invoice and approvers never change' using errcode = '23514';
  end if;
  if new.status = old.status and new.status = 'waiting' then
    -- The worker's reminder stamp, and nothing else.
    if (new.decided_by, new.on_behalf_of, new.decided_at, new.reason) is distinct from (null, null, null, null) then
      raise exception 'a waiting step is decided by approving or rejecting it' using errcode = '23514';
    end if;
    return new;
  end if;
  if old.status <> 'waiting' or new.status not in ('approved', 'rejected') then
    raise exception 'an approval step is decided once' using errcode = '23514';
  end if;
  if v_role is null and not public.session_bypasses_rls() then
    raise exception 'a step is decided by a person' using errcode = '42501';
  end if;
  if v_role is not null and (v_user is null or new.decided_by is distinct from v_user or new.org_id is distinct from public.app_org_id()) then
    raise exception 'a step is decided by an approver, in their own name' using errcode = '42501';
  end if;
  select * into v_invoice from public.invoices i where i.org_id = new.org_id and i.id = new.invoice_id for update;
  if v_invoice.status <> 'pending_approval' then
    raise exception 'invoice % is not waiting for approval', v_invoice.invoice_number using errcode = '23514';
  end if;
  if exists (select 1 from public.invoice_approvals a
              where a.org_id = new.org_id and a.invoice_id = new.invoice_id and a.step < new.step and a.status <> 'approved') then
    raise exception 'the steps of a payment''s approval are decided in order' using errcode = '23514';
  end if;
  -- Who may: a member the step names (by role or by name), or their delegate for today, deciding for them.
  if v_for is null then
    if not public.may_approve_step(new.approver_role, new.approver_ids, public.org_staff_member(new.org_id, new.decided_by),
                                   new.decided_by) then
      raise exception 'this step is not yours to approve' using errcode = '42501';
    end if;
  else
    v_for_role := public.org_staff_member(new.org_id, v_for);
    if not public.may_approve_step(new.approver_role, new.approver_ids, v_for_role, v_for)
       or not exists (select 1 from public.approval_delegations d
                       where d.org_id = new.org_id and d.user_id = v_for and d.delegate_id = new.decided_by
                         and d.revoked_at is null and v_today between d.starts_on and d.ends_on)
       or public.org_staff_member(new.org_id, new.decided_by) is null then
      raise exception 'you are not standing in today for someone this step names' using errcode = '42501';
    end if;
  end if;
  -- Approvers are distinct people (domain.approvals.distinct_people_refusal), the reviewer's step 0 included.
  if new.decided_by = v_invoice.authorized_by or v_for = v_invoice.authorized_by
     or exists (select 1 from public.invoice_approvals a
                 where a.org_id = new.org_id and a.invoice_id = new.invoice_id and a.step <> new.step
                   and a.status <> 'waiting'
                   and (a.decided_by in (new.decided_by, v_for) or a.on_behalf_of in (new.decided_by, v_for))) then
    raise exception 'approvers are distinct people: you approved this payment already' using errcode = '23514';
  end if;
  if exists (select 1 from public.submissions s
              where s.org_id = new.org_id and s.submitted_by in (new.decided_by, v_for)
                and (s.milestone_id = v_invoice.milestone_id
                     or s.milestone_id in (select t.milestone_id from public.invoice_tasks t
                                            where t.org_id = new.org_id and t.invoice_id = new.invoice_id))) then
    raise exception 'nobody approves work they submitted' using errcode = '23514';
  end if;
  if new.status = 'rejected' and new.reason is null then
    raise exception 'a rejection says why' using errcode = '23514';
  end if;
  new.decided_at := now();
  return new;
end
$$;
revoke all on function invoice_approvals_guard() from public;

-- What a decided step does to its invoice, as the owner (an approver need not be finance, who alone updates
-- invoices): the last approval makes it payable; a rejection voids it, takes back its ledger lines and, for a
-- milestone, sends the work back to the contractor like a dispute (the milestone planned again).
create or replace function invoice_approvals_apply() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_invoice public.invoices;
  v_txn uuid := gen_random_uuid();
begin
  select * into v_invoice from public.invoices i where i.org_id = new.org_id and i.id = new.invoice_id;
  if new.status = 'approved' then
    if not exists (select 1 from public.invoice_approvals a
                    where a.org_id = new.org_id and a.invoice_id = new.invoice_id and a.status <> 'approved') then
      update public.invoices set status = 'approved' where org_id = new.org_id and id = new.invoice_id;
      -- Completion billing: a final payment approved by its last step (or the last payment that waited beside it)
      -- completes its engagement (sql/completion.sql).
      if v_invoice.kind in ('advance', 'completion', 'final') then
        perform public.completion_close(new.org_id, v_invoice.engagement_id);
      end if;
    end if;
    return null;
  end if;
  update public.invoices set status = 'void' where org_id = new.org_id and id = new.invoice_id;
  insert into public.ledger_entries (id, org_id, txn_id, event, invoice_id, account, amount_minor, currency)
  select gen_random_uuid(), l.org_id, v_txn, 'authorization_voided', l.invoice_id, l.account, -l.amount_minor, l.currency
    from public.ledger_entries l
   where l.org_id = new.org_id and l.invoice_id = new.invoice_id and l.event in ('authorized', 'retainage_released');
  -- Back to the contractor while its engagement takes work (active or paused); a cancelled one's stays as it was,
  -- with nothing payable (a completed one cannot have a payment awaiting approval: services/engagements).
  if v_invoice.milestone_id is not null then
    update public.milestones m set status = 'planned', updated_at = now()
     where m.org_id = new.org_id and m.id = v_invoice.milestone_id and m.status = 'approved'
       and exists (select 1 from public.engagements e
                    where e.org_id = m.org_id and e.id = m.engagement_id and e.status in ('active', 'paused'));
  end if;
  -- A task or final invoice (completion billing): its tasks are billed by it no more, and go back to the contractor
  -- the same way. (A rejected advance is paid with the final payment instead: domain.completion.final_amount.) On a
  -- cancelled engagement the work stays where it is, as a milestone's does, and so do the tasks' billing rows: they
  -- stay billed by the void invoice, so the rejection is not undone by invoicing them again.
  if v_invoice.kind in ('completion', 'final')
     and exists (select 1 from public.engagements e
                  where e.org_id = new.org_id and e.id = v_invoice.engagement_id and e.status in ('active', 'paused')) then
    update public.invoice_tasks t set voided_at = now() where t.org_id = new.org_id and t.invoice_id = new.invoice_id;
    update public.milestones m set status = 'planned', updated_at = now()
     where m.org_id = new.org_id and m.status = 'approved'
       and m.id in (select t.milestone_id from public.invoice_tasks t where t.org_id = new.org_id and t.invoice_id = new.invoice_id)
       and exists (select 1 from public.engagements e
                    where e.org_id = m.org_id and e.id = m.engagement_id and e.status in ('active', 'paused'));
  end if;
  return null;
end
$$;
revoke all on function invoice_approvals_apply() from public;

create or replace function approval_delegations_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  -- Org and role first, before org_staff_member() reads the memberships the row names: otherwise anyone's
  -- refusal told apart whether the people it names are staff of an organization they are not in (the policies'
  -- WITH CHECK runs only after this trigger).
  if (public.app_role() is null and not public.session_bypasses_rls())
     or (public.app_role() is not null
         and (public.app_role() not in ('admin', 'owner', 'finance') or new.org_id is distinct from public.app_org_id())) then
    raise exception 'approvals are delegated by the organization''s admins, project owners and finance'
      using errcode = '42501';
  end if;
  if tg_op = 'INSERT' then
    if public.org_staff_member(new.org_id, new.user_id) is null or public.org_staff_member(new.org_id, new.delegate_id) is null then
      raise exception 'an approver delegates to another admin, project owner or finance member' using errcode = '23514';
    end if;
    if new.revoked_at is not null or new.ends_on < (now() at time zone 'UTC')::date then
      raise exception 'a delegation starts live and ends today or later' using errcode = '23514';
    end if;
    new.created_at := now();
    return new;
  end if;
  if old.revoked_at is not null or new.revoked_at is null
     or (new.org_id, new.id, new.user_id, new.delegate_id, new.starts_on, new.ends_on, new.created_at)
        is distinct from (old.org_id, old.id, old.user_id, old.delegate_id, old.starts_on, old.ends_on, old.created_at) then
    raise exception 'a delegation is revoked, once; nothing else of it changes' using errcode = '23514';
  end if;
  new.revoked_at := now();
  return new;
end
$$;
revoke all on function approval_delegations_guard() from public;

create or replace function holds_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_invoice public.invoices;
begin
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and (v_role not in ('admin', 'finance') or v_user is null or new.org_id is distinct from public.app_org_id())) then
    raise exception 'holds are placed and released by finance or an admin' using errcode = '42501';
  end if;
  if tg_op = 'INSERT' then
    if (v_role is not null and new.held_by is distinct from v_user) or new.released_at is not null then
      raise exception 'a hold is placed live, in the name of whoever places it' using errcode = '42501';
    end if;
    if new.invoice_id is not null then
      select * into v_invoice from public.invoices i where i.org_id = new.org_id and i.id = new.invoice_id for update;
      if v_invoice.status not in ('pending_approval', 'approved', 'exported') then
        raise exception 'invoice % is %; only an invoice not yet paid is held', v_invoice.invoice_number, v_invoice.status
          using errcode = '23514';
      end if;
      if v_invoice.status = 'exported' and v_invoice.batch_id is null then
        raise exception 'invoice % is being paid by Stripe; it can be held once the transfer is answered',
          v_invoice.invoice_number using errcode = '23514';
      end if;
    end if;
    new.held_at := now();
    return new;
  end if;
  if old.released_at is not null or new.released_at is null
     or (v_role is not null and new.released_by is distinct from v_user)
     or (new.org_id, new.id, new.invoice_id, new.contractor_id, new.reason, new.held_by, new.held_at)
        is distinct from (old.org_id, old.id, old.invoice_id, old.contractor_id, old.reason, old.held_by, old.held_at) then
    raise exception 'a hold is released, once, in the name of whoever releases it; nothing else of it changes'
      using errcode = '23514';
  end if;
  new.released_at := now();
  return new;
end
$$;
revoke all on function holds_guard() from public;

do $$
begin
  if to_regclass('public.holds') is null then
    return;
  end if;
  drop trigger if exists approval_policies_guard on public.approval_policies;
  create trigger approval_policies_guard before insert or update on public.approval_policies
    for each row execute function approval_policies_guard();
  drop trigger if exists approval_policies_steps_check on public.approval_policies;
  create constraint trigger approval_policies_steps_check after insert on public.approval_policies
    deferrable initially deferred for each row execute function approval_policies_steps_check();
  drop trigger if exists approval_policy_steps_guard on public.approval_policy_steps;
  create trigger approval_policy_steps_guard before insert on public.approval_policy_steps
    for each row execute function approval_policy_steps_guard();
  drop trigger if exists invoices_approvals_start on public.invoices;
  create trigger invoices_approvals_start after insert on public.invoices
    for each row when (new.status = 'pending_approval') execute function invoices_approvals_start();
  drop trigger if exists invoice_approvals_guard on public.invoice_approvals;
  create trigger invoice_approvals_guard before update on public.invoice_approvals
    for each row execute function invoice_approvals_guard();
  drop trigger if exists invoice_approvals_apply on public.invoice_approvals;
  create trigger invoice_approvals_apply after update on public.invoice_approvals
    for each row when (old.status = 'waiting' and new.status <> 'waiting') execute function invoice_approvals_apply();
  drop trigger if exists approval_delegations_guard on public.approval_delegations;
  create trigger approval_delegations_guard before insert or update on public.approval_delegations
    for each row execute function approval_delegations_guard();
  drop trigger if exists holds_guard on public.holds;
  create trigger holds_guard before insert or update on public.holds for each row execute function holds_guard();
end
$$;
