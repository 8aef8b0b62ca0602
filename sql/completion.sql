-- Completion billing (issue 20; DESIGN.md section 4, "Completion billing", invariant 6): the SQL twins of
-- backoffice/domain/completion.py, the policies and grants of invoice_tasks and the contractor's two invoice kinds
-- (before sql/new_ids.sql, which reads the grants), and the guards that hold the money rules whoever writes.
--
--   the advance                 invoices_guard -> completion_invoice_ok: the engagement's advance_minor, nothing
--                               withheld, authorized by whoever confirmed it, when the engagement becomes active;
--                               at most one per engagement, ever (invoices_one_advance_per_engagement)
--   a task invoice              its tasks (invoice_tasks) approved, of its engagement, each billed by one live
--                               invoice (invoice_tasks_billed_once), adding up to its gross (at commit)
--   the final payment           with the last task's approval (reviews_moved_milestone), for every approved task not
--                               yet invoiced: the contract value less what was invoiced; one live per engagement
--   invariant 6                 at commit, for every completion engagement written: its live advance, task and final
--                               invoices never exceed its contract value, and equal it once completed; after the
--                               work request is sent its tasks share the value less the advance exactly
--   the terms                   engagements_billing_guard: the advance is round_half_up(value × rate), fixed once
--                               sent; the value changes only with a change order of the same transaction

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- The rules (twins of backoffice/domain/completion.py; tests/integration/test_completion_rule_parity.py). Pure.
-- ---------------------------------------------------------------------------------------------

-- domain.completion.advance_amount (the one rounding rule, money_percent_of, in sql/rules.sql)
create or replace function completion_advance(p_value bigint, p_bps integer) returns bigint
language sql immutable parallel safe as $$
  select public.money_percent_of(p_value, p_bps)
$$;

-- domain.completion.withholds
create or replace function invoice_kind_withholds(p_kind text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_kind = any (array['milestone', 'completion', 'final']), false)
$$;

-- domain.completion.final_amount
create or replace function completion_final_amount(p_value bigint, p_billed bigint) returns bigint
language sql immutable parallel safe as $$
  select p_value - p_billed
$$;

-- domain.completion.schedule_problem
create or replace function completion_schedule_problem(p_value bigint, p_advance bigint, p_tasks integer,
                                                       p_task_total bigint) returns text
language sql immutable parallel safe as $$
  select case
    when p_value is null or p_value <= 0 then 'Enter the contract value.'
    when coalesce(p_tasks, 0) = 0 then 'Add at least one task.'
    when p_task_total <> p_value - p_advance
      then format('the tasks add up to %s but must add up to the contract value less the advance, %s', p_task_total,
                  p_value - p_advance)
  end
$$;

-- domain.completion.billed_problem
create or replace function completion_billed_problem(p_value bigint, p_billed bigint, p_completed boolean) returns text
language sql immutable parallel safe as $$
  select case
    when p_billed > p_value then 'its invoices would exceed the contract value'
    when p_completed and p_billed <> p_value then 'a completed engagement''s invoices add up to its contract value'
  end
$$;

-- Only the guards below call them, as the owner; not PUBLIC.
revoke all on function completion_advance(bigint, integer), invoice_kind_withholds(text),
  completion_final_amount(bigint, bigint), completion_schedule_problem(bigint, bigint, integer, bigint),
  completion_billed_problem(bigint, bigint, boolean) from public;

-- ---------------------------------------------------------------------------------------------
-- Policies and grants.
-- ---------------------------------------------------------------------------------------------

-- invoices: the contractor's user writes two kinds for its own contractor (contractor_own, sql/rls_policies.sql, holds
-- it there): the advance, as it accepts the work request (authorized by whoever confirmed the advance when sending
-- it: completion_invoice_ok), and an invoice for its approved tasks, raised in its own name. It writes no ledger line:
-- the database books those two invoices' authorization lines (invoices_contractor_ledger, below).
do $$
begin
  if to_regclass('public.invoice_tasks') is null then
    return;  -- (before revision 0030: not yet)
  end if;
  perform pg_temp.policy('invoices', 'writers_insert', $q$as restrictive for insert with check (
  (select app_role()) in ('admin', 'owner') or ((select app_role()) = 'contractor' and kind in ('advance', 'completion')))$q$);
  perform pg_temp.policy('invoices', 'authorized_by_self', $q$as restrictive for insert with check (
  case when (select app_role()) = 'contractor' then kind = 'advance' or raised_by = (select app_user_id())
       else authorized_by = (select app_user_id()) end)$q$);
end
$$;

-- invoice_tasks: staff read the organization's, a contractor its own. Written with their invoice (the contractor's
-- user its task invoice's, the deciding owner or admin the final payment's: invoice_tasks_guard); voided with it by
-- a rejected approval step (invoice_approvals_apply, as the owner); never deleted.
select pg_temp.contractor_scoped('invoice_tasks');
select pg_temp.writes_only_by('invoice_tasks', '{admin,owner,contractor}');
select pg_temp.grant_to_app('invoice_tasks', 'select, insert');
select pg_temp.grant_to_worker('invoice_tasks', 'select');  -- a notice's or a receipt's tasks

-- ---------------------------------------------------------------------------------------------
-- Guards.
-- ---------------------------------------------------------------------------------------------

-- What invoices_guard asks of an advance, task or final invoice as it is written (p_released: the engagement's
-- retainage was released, so work invoices withhold none). Runs inside invoices_guard, as the owner.
create or replace function completion_invoice_ok(p_org uuid, p_engagement_id uuid, p_kind text, p_gross bigint,
                                                 p_retainage_bps integer, p_fee_bps integer, p_authorized_by uuid,
                                                 p_released boolean) returns void
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
declare
  v_billed bigint;
  v_engagement public.engagements;
begin
  select * into v_engagement from public.engagements e where e.org_id = p_org and e.id = p_engagement_id;
  if p_kind = 'advance' then
    if v_engagement.advance_minor = 0 then
      raise exception 'this engagement takes no advance' using errcode = '23514';
    end if;
    if p_gross is distinct from v_engagement.advance_minor or p_retainage_bps <> 0 or p_fee_bps <> 0 then
      raise exception 'an advance pays the engagement''s advance (%), with nothing withheld and no fee',
        v_engagement.advance_minor using errcode = '23514';
    end if;
    if v_engagement.status <> 'active' or v_engagement.responded_at is distinct from now() then
      raise exception 'an advance is authorized when its engagement becomes active' using errcode = '23514';
    end if;
    if p_authorized_by is distinct from v_engagement.advance_confirmed_by then
      raise exception 'an advance is authorized by whoever confirmed it with the work request' using errcode = '23514';
    end if;
    return;
  end if;
  if p_retainage_bps is distinct from public.withheld_bps(v_engagement.retainage_bps, p_released)
     or p_fee_bps is distinct from v_engagement.service_fee_bps then
    raise exception 'an invoice withholds the engagement''s retainage and charges its service fee' using errcode = '23514';
  end if;
  if p_kind = 'completion' and v_engagement.status not in ('active', 'paused', 'cancelled') then
    raise exception 'approved tasks are invoiced on an engagement under way' using errcode = '23514';
  end if;
  if p_kind = 'final' then
    if v_engagement.status not in ('active', 'paused') then
      raise exception 'the final payment is authorized on an engagement under way' using errcode = '23514';
    end if;
    select coalesce(sum(i.gross_minor), 0) into v_billed from public.invoices i
     where i.org_id = p_org and i.engagement_id = p_engagement_id
       and i.kind in ('advance', 'completion', 'final') and i.voided_at is null;
    if p_gross is distinct from public.completion_final_amount(v_engagement.contract_value_minor, v_billed) then
      raise exception 'the final payment is the contract value less what was invoiced (%)',
        public.completion_final_amount(v_engagement.contract_value_minor, v_billed) using errcode = '23514';
    end if;
  end if;
end
$$;
revoke all on function completion_invoice_ok(uuid, uuid, text, bigint, integer, integer, uuid, boolean) from public;

-- The tasks of a task or final invoice: written with it, in this transaction, by whoever wrote it; each an approved
-- task of its engagement, at its amount. Afterwards only voided with it (a rejected approval step).
create or replace function invoice_tasks_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_invoice public.invoices;
  v_task public.milestones;
begin
  if tg_op = 'DELETE' then
    raise exception 'the tasks an invoice billed are kept' using errcode = '42501';
  end if;
  select * into v_invoice from public.invoices i
   where i.org_id = new.org_id and i.id = new.invoice_id;
  if tg_op = 'UPDATE' then
    if (to_jsonb(new) - 'voided_at') is distinct from (to_jsonb(old) - 'voided_at') or old.voided_at is not null
       or new.voided_at is null or v_invoice.status <> 'void' then
      raise exception 'a billed task is released only with its voided invoice' using errcode = '23514';
    end if;
    new.voided_at := now();
    return new;
  end if;
  if v_invoice.id is null or v_invoice.kind not in ('completion', 'final') or v_invoice.authorized_at <> now()
     or (new.engagement_id, new.contractor_id) is distinct from (v_invoice.engagement_id, v_invoice.contractor_id)
     or new.voided_at is not null then
    raise exception 'an invoice''s tasks are written with it, in the same transaction' using errcode = '23514';
  end if;
  if v_role is not null and (v_user is null
       or (v_invoice.kind = 'completion' and v_invoice.raised_by is distinct from v_user)
       or (v_invoice.kind = 'final' and v_invoice.authorized_by is distinct from v_user)) then
    raise exception 'an invoice''s tasks are named by whoever writes it' using errcode = '42501';
  end if;
  select * into v_task from public.milestones m
   where m.org_id = new.org_id and m.id = new.milestone_id and m.engagement_id = new.engagement_id for share;
  if v_task.id is null or v_task.status <> 'approved' then
    raise exception 'only an approved task of the engagement is invoiced' using errcode = '23514';
  end if;
  if new.amount_minor is distinct from v_task.amount_minor then
    raise exception 'a task is invoiced at its amount (%)', v_task.amount_minor using errcode = '23514';
  end if;
  new.created_at := now();
  return new;
end
$$;
revoke all on function invoice_tasks_guard() from public;

-- At commit, for each task or final invoice written: it names at least one task; a task invoice's gross is its
-- tasks' sum and it is authorized by whoever approved the last of them; the final payment bills every approved task
-- not billed otherwise, leaves no task open, and is its tasks plus an advance never paid.
create or replace function completion_invoice_checked() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_count integer;
  v_total bigint;
  v_engagement public.engagements;
  v_advance bigint;
  v_approver uuid;
begin
  select count(*), coalesce(sum(t.amount_minor), 0) into v_count, v_total from public.invoice_tasks t
   where t.org_id = new.org_id and t.invoice_id = new.id;
  if v_count = 0 then
    raise exception 'invoice % names no task', new.invoice_number using errcode = '23514';
  end if;
  if new.kind = 'completion' then
    if v_total <> new.gross_minor then
      raise exception 'invoice %''s gross is the sum of its tasks (%)', new.invoice_number, v_total using errcode = '23514';
    end if;
    select r.reviewed_by into v_approver from public.invoice_tasks t
      join public.reviews r on r.org_id = t.org_id and r.milestone_id = t.milestone_id
     where t.org_id = new.org_id and t.invoice_id = new.id
       and (r.decision = 'approve' or (r.decision = 'partial' and r.partial_policy = 'split'))
     order by r.reviewed_at desc, r.id limit 1;
    if new.authorized_by is distinct from v_approver then
      raise exception 'a task invoice is authorized by whoever approved the last of its tasks' using errcode = '23514';
    end if;
    return null;
  end if;
  select * into v_engagement from public.engagements e where e.org_id = new.org_id and e.id = new.engagement_id;
  if exists (select 1 from public.milestones m
              where m.org_id = new.org_id and m.engagement_id = new.engagement_id and m.status in ('planned', 'submitted'))
     or exists (select 1 from public.milestones m
                 where m.org_id = new.org_id and m.engagement_id = new.engagement_id and m.status = 'approved'
                   and not exists (select 1 from public.invoice_tasks t
                                    where t.org_id = m.org_id and t.milestone_id = m.id and t.voided_at is null)) then
    raise exception 'the final payment comes with the last task''s approval and bills every approved task not yet invoiced'
      using errcode = '23514';
  end if;
  select coalesce(sum(i.gross_minor), 0) into v_advance from public.invoices i
   where i.org_id = new.org_id and i.engagement_id = new.engagement_id and i.kind = 'advance' and i.voided_at is null;
  if new.gross_minor <> v_total + v_engagement.advance_minor - v_advance then
    raise exception 'the final payment is its tasks (%) and any advance never paid (%)', v_total,
      v_engagement.advance_minor - v_advance using errcode = '23514';
  end if;
  return null;
end
$$;
revoke all on function completion_invoice_checked() from public;

-- At commit, for a completion engagement written (its terms, a change order, one of its invoices): once the work
-- request is sent its tasks share the contract value less the advance exactly, and invariant 6 holds.
create or replace function completion_engagement_check(p_org uuid, p_engagement uuid) returns void
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_engagement public.engagements;
  v_tasks integer;
  v_task_total bigint;
  v_billed bigint;
  v_problem text;
begin
  select * into v_engagement from public.engagements e where e.org_id = p_org and e.id = p_engagement;
  if v_engagement.billing_mode is distinct from 'completion' then
    return;
  end if;
  -- The final payment settles every task: none is added or reopened beside a live one (a change order while it
  -- awaits approval would leave it unable to complete the engagement).
  if exists (select 1 from public.invoices i
              where i.org_id = p_org and i.engagement_id = p_engagement and i.kind = 'final' and i.voided_at is null)
     and exists (select 1 from public.milestones m
                  where m.org_id = p_org and m.engagement_id = p_engagement and m.status in ('planned', 'submitted')) then
    raise exception 'engagement %: its final payment is authorized; no task is added or reopened beside it',
      v_engagement.title using errcode = '23514';
  end if;
  if v_engagement.status <> 'draft' then
    select count(*), coalesce(sum(m.amount_minor), 0) into v_tasks, v_task_total from public.milestones m
     where m.org_id = p_org and m.engagement_id = p_engagement and m.status <> 'cancelled';
    v_problem := public.completion_schedule_problem(v_engagement.contract_value_minor, v_engagement.advance_minor,
                                                     v_tasks, v_task_total);
    if v_problem is not null then
      raise exception 'engagement %: %', v_engagement.title, v_problem using errcode = '23514';
    end if;
  end if;
  select coalesce(sum(i.gross_minor), 0) into v_billed from public.invoices i
   where i.org_id = p_org and i.engagement_id = p_engagement and i.kind in ('advance', 'completion', 'final')
     and i.voided_at is null;
  v_problem := public.completion_billed_problem(v_engagement.contract_value_minor, v_billed,
                                                v_engagement.status = 'completed');
  if v_problem is not null then
    raise exception 'engagement %: %', v_engagement.title, v_problem using errcode = '23514';
  end if;
end
$$;
revoke all on function completion_engagement_check(uuid, uuid) from public;

create or replace function completion_engagement_checked() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  perform public.completion_engagement_check(new.org_id,
    (to_jsonb(new) ->> case when tg_table_name = 'engagements' then 'id' else 'engagement_id' end)::uuid);
  return null;
end
$$;
revoke all on function completion_engagement_checked() from public;

-- Whether a completion engagement's final payment is authorized and approved by every step, with no payment of the
-- engagement awaiting approval: then it is completed (engagements_guard lets nothing else complete it).
create or replace function completion_settled(p_org uuid, p_engagement uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  -- (Only of the caller's organization, and a contractor's user only of its own engagements: nobody learns another's.)
  select (public.app_role() is null
          or (p_org = public.app_org_id()
              and (public.app_contractor_id() is null
                   or exists (select 1 from public.engagements e where e.org_id = p_org and e.id = p_engagement
                                 and e.contractor_id = public.app_contractor_id()))))
     and exists (select 1 from public.invoices i
                  where i.org_id = p_org and i.engagement_id = p_engagement and i.kind = 'final'
                    and i.voided_at is null and i.status <> 'pending_approval')
     and not exists (select 1 from public.invoices i
                      where i.org_id = p_org and i.engagement_id = p_engagement and i.status = 'pending_approval')
$$;
revoke all on function completion_settled(uuid, uuid) from public;
-- engagements_guard asks it as the caller: the web role (whose owner or admin, or approval step's decider, completes
-- the engagement).
select pg_temp.grant_execute('completion_settled(uuid, uuid)');

-- Complete a completion engagement whose final payment is settled (completion_settled): with the last task's
-- approval, or with the last approval step of a payment that waited. Whoever's transaction it is (an approval step's
-- decider may be finance, who updates no engagement): the owner's.
create or replace function completion_close(p_org uuid, p_engagement uuid) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
begin
  if public.app_role() is not null and p_org is distinct from public.app_org_id() then
    raise exception 'engagement % not found', p_engagement using errcode = '42501';
  end if;
  if not public.completion_settled(p_org, p_engagement) then
    return false;
  end if;
  update public.engagements e set status = 'completed', completed_at = now(), updated_at = now()
   where e.org_id = p_org and e.id = p_engagement and e.billing_mode = 'completion' and e.status in ('active', 'paused');
  return found;
end
$$;
revoke all on function completion_close(uuid, uuid) from public;
-- services/completion.close_if_settled, as the owner or admin whose approval authorized the final payment.
select pg_temp.grant_execute('completion_close(uuid, uuid)');

-- The terms of a completion engagement: the advance is round_half_up(value × rate), within what the organization
-- allows, confirmed by whoever sends the work request (or awards the project), and fixed from then on; the value
-- changes only with a change order of the same transaction. A milestone engagement has none of these (the table's
-- CHECK engagements_billing_terms).
create or replace function engagements_billing_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_user uuid := public.app_user_id();
  v_org public.organizations;
  v_project record;
begin
  if new.billing_mode <> 'completion' then
    return new;
  end if;
  if tg_op = 'INSERT' or old.status = 'draft' then
    select * into v_org from public.organizations o where o.id = new.org_id;
    -- (Judged when the advance is set or sent: a draft written before the organization switched advances off can
    -- still be edited down to none, or cancelled.)
    -- (An award keeps its project's advance, which the contractors proposed on, whatever the setting is now.)
    if new.advance_bps > 0 and not v_org.advances_enabled
       and (tg_op = 'INSERT' or new.advance_bps is distinct from old.advance_bps or new.status <> 'draft')
       and new.status <> 'cancelled' and new.proposal_id is null then
      raise exception 'this organization pays no advances' using errcode = '23514';
    end if;
    if new.advance_minor is distinct from public.completion_advance(new.contract_value_minor, new.advance_bps) then
      raise exception 'the advance is round_half_up(contract value × rate / 10000): %',
        public.completion_advance(new.contract_value_minor, new.advance_bps) using errcode = '23514';
    end if;
    if tg_op = 'INSERT' and new.proposal_id is not null then
      -- An award: the project's advance on the proposal's price, confirmed by the awarding person.
      select p.advance_bps, q.price_minor into v_project from public.proposals q
        join public.projects p on p.org_id = q.org_id and p.id = q.project_id
       where q.org_id = new.org_id and q.id = new.proposal_id;
      if (new.advance_bps, new.contract_value_minor) is distinct from (v_project.advance_bps, v_project.price_minor) then
        raise exception 'an awarded engagement takes its project''s advance on the proposal''s price' using errcode = '23514';
      end if;
    end if;
    if (tg_op = 'INSERT' and new.status = 'active') or (tg_op = 'UPDATE' and new.status = 'awaiting_acceptance') then
      if new.advance_minor > 0 then
        if v_user is not null and new.advance_confirmed_by is distinct from v_user then
          raise exception 'the advance is confirmed by whoever sends the work request, in their own name' using errcode = '42501';
        end if;
        if new.advance_confirmed_by is null then
          raise exception 'the advance of % is confirmed when the work request is sent', new.advance_minor using errcode = '23514';
        end if;
        new.advance_confirmed_at := now();
      elsif new.advance_confirmed_by is not null then
        raise exception 'there is no advance to confirm' using errcode = '23514';
      end if;
    elsif num_nonnulls(new.advance_confirmed_by, new.advance_confirmed_at) > 0 then
      raise exception 'the advance is confirmed when the work request is sent' using errcode = '23514';
    end if;
    return new;
  end if;
  if (new.advance_bps, new.advance_minor, new.advance_confirmed_by, new.advance_confirmed_at)
     is distinct from (old.advance_bps, old.advance_minor, old.advance_confirmed_by, old.advance_confirmed_at) then
    raise exception 'the advance is fixed once the work request is sent' using errcode = '23514';
  end if;
  if new.contract_value_minor is distinct from old.contract_value_minor
     and not exists (select 1 from public.change_orders c
                      where c.org_id = new.org_id and c.engagement_id = new.id and c.created_at = now()) then
    raise exception 'once the work request is sent, the contract value changes only by change order' using errcode = '23514';
  end if;
  return new;
end
$$;
revoke all on function engagements_billing_guard() from public;

do $$
begin
  if to_regclass('public.invoice_tasks') is not null then
    drop trigger if exists invoice_tasks_guard on public.invoice_tasks;
    create trigger invoice_tasks_guard before insert or update or delete on public.invoice_tasks
      for each row execute function invoice_tasks_guard();
    drop trigger if exists completion_invoice_checked on public.invoices;
    create constraint trigger completion_invoice_checked after insert on public.invoices
      deferrable initially deferred for each row when (new.kind in ('completion', 'final'))
      execute function completion_invoice_checked();
    drop trigger if exists completion_invoices_checked on public.invoices;
    create constraint trigger completion_invoices_checked after insert or update on public.invoices
      deferrable initially deferred for each row when (new.kind in ('advance', 'completion', 'final'))
      execute function completion_engagement_checked();
    drop trigger if exists completion_engagement_checked on public.engagements;
    create constraint trigger completion_engagement_checked after insert or update on public.engagements
      deferrable initially deferred for each row when (new.billing_mode = 'completion')
      execute function completion_engagement_checked();
    drop trigger if exists completion_change_checked on public.change_orders;
    create constraint trigger completion_change_checked after insert on public.change_orders
      deferrable initially deferred for each row execute function completion_engagement_checked();
    -- Before engagements_guard (triggers fire in name order): the terms are judged before the move.
    drop trigger if exists engagements_billing_guard on public.engagements;
    create trigger engagements_billing_guard before insert or update on public.engagements
      for each row execute function engagements_billing_guard();
  end if;
end
$$;

-- Whether a task or final invoice billing this task was voided in this transaction (a rejected approval step): the
-- one way an approved task goes back to the contractor (milestones_guard asks it, as the caller, who may not read
-- invoice_tasks: the owner's).
create or replace function task_invoice_voided_now(p_org uuid, p_milestone uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select exists (select 1 from public.invoice_tasks t join public.invoices i on i.org_id = t.org_id and i.id = t.invoice_id
                  where t.org_id = p_org and t.milestone_id = p_milestone and i.status = 'void' and i.voided_at = now())
$$;
revoke all on function task_invoice_voided_now(uuid, uuid) from public;
select pg_temp.grant_execute('task_invoice_voided_now(uuid, uuid)');


-- domain.projects.proposal_task_pool: what a proposal's milestones share, its price less the advance on a completion
-- project (the contract's tasks share the same). The proposals' commit checks (sql/project_guards.sql) ask it as the
-- caller, the contractor's user writing its proposal, who may read it: the owner's, reading only that proposal.
create or replace function proposal_task_pool(p_org uuid, p_proposal uuid) returns bigint
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select q.price_minor - case when p.billing_mode = 'completion'
                              then public.completion_advance(q.price_minor, coalesce(p.advance_bps, 0)) else 0 end
    from public.proposals q join public.projects p on p.org_id = q.org_id and p.id = q.project_id
   where q.org_id = p_org and q.id = p_proposal
     and (public.app_role() is null
          or (q.org_id = public.app_org_id()
              and (public.app_contractor_id() is null or q.contractor_id = public.app_contractor_id())))
$$;
revoke all on function proposal_task_pool(uuid, uuid) from public;
select pg_temp.grant_execute('proposal_task_pool(uuid, uuid)');

-- domain.invoices.authorization_lines: an authorization's ledger lines (the work expensed; the net owed now, the
-- retainage later; a fee its own expense and payable), those that are not zero, in that order.
create or replace function authorization_ledger_lines(p_gross bigint, p_retainage bigint, p_net bigint, p_fee bigint)
returns table (account text, amount_minor bigint)
language sql immutable parallel safe as $$
  select t.account, t.amount_minor from (values (1, 'work_expense', p_gross), (2, 'accounts_payable', -p_net),
                                               (3, 'retainage_payable', -p_retainage),
                                               (4, 'service_fee_expense', p_fee), (5, 'service_fees_payable', -p_fee))
                                       t(n, account, amount_minor)
   where t.amount_minor <> 0 order by t.n
$$;
revoke all on function authorization_ledger_lines(bigint, bigint, bigint, bigint) from public;

-- What the contractor's user writes (its advance as it accepts, its task invoice) the database books: the user may
-- write no ledger line at all (ledger_entries' policies), so nothing it sends can misstate the books.
create or replace function invoices_contractor_ledger() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_txn uuid := gen_random_uuid();
begin
  if public.app_role() is distinct from 'contractor' then
    return null;  -- staff book their own authorizations (services/invoices.write_ledger)
  end if;
  insert into public.ledger_entries (id, org_id, txn_id, event, invoice_id, account, amount_minor, currency)
  select gen_random_uuid(), new.org_id, v_txn, 'authorized', new.id, l.account, l.amount_minor, new.currency
    from public.authorization_ledger_lines(new.gross_minor, new.retainage_minor, new.net_minor, new.fee_minor) l;
  return null;
end
$$;
revoke all on function invoices_contractor_ledger() from public;

do $$
begin
  if to_regclass('public.invoice_tasks') is not null then
    drop trigger if exists invoices_contractor_ledger on public.invoices;
    create trigger invoices_contractor_ledger after insert on public.invoices
      for each row when (new.kind in ('advance', 'completion')) execute function invoices_contractor_ledger();
  end if;
end
$$;
