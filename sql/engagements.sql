-- Engagements and milestones: the guard triggers. Change orders have none of their own: the app role
-- may only insert them (sql/rls_policies.sql), and the milestones they add or cancel pass
-- milestones_guard. Policies and grants: sql/rls_policies.sql.

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Engagements, milestones, change orders. The state machines of DESIGN.md section 3 live in
-- backoffice/domain/engagements.py; these triggers refuse the same illegal moves whoever writes.
-- ---------------------------------------------------------------------------------------------

create or replace function engagements_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_move_roles text[];
  v_response_columns text[] := array['status', 'responded_at', 'responded_by', 'decline_reason', 'updated_at'];
  v_proposal record;
  v_terms record;
begin
  if tg_op = 'INSERT' and to_jsonb(new) ->> 'proposal_id' is not null then
    -- An award (services/awards.py; sql/project_guards.sql): the contract starts active at once, from a proposal accepted
    -- in this very transaction. The proposal was the contractor's offer (responded_by: who submitted it), the
    -- acceptance is the awarding person's (sent_by); both recorded now.
    select q.status, q.decided_at, q.contractor_id, q.submitted_by into v_proposal from public.proposals q
     where q.org_id = new.org_id and q.id = (to_jsonb(new) ->> 'proposal_id')::uuid;
    if v_proposal.status is distinct from 'accepted' or v_proposal.decided_at is distinct from now()
       or v_proposal.contractor_id is distinct from new.contractor_id then
      raise exception 'an engagement is created from a proposal only by accepting that proposal' using errcode = '23514';
    end if;
    if new.status <> 'active' or new.responded_by is distinct from v_proposal.submitted_by
       or num_nonnulls(new.decline_reason, new.completed_at, new.cancelled_at, new.cancel_reason) > 0 then
      raise exception 'an awarded engagement starts active, accepted by the proposal''s author' using errcode = '23514';
    end if;
    if v_role is not null and (new.created_by is distinct from v_user or new.sent_by is distinct from v_user) then
      raise exception 'an award is recorded in the name of the user making it' using errcode = '42501';
    end if;
    -- Its terms are the project's (currency, billing mode, owner, title) and the organization's (retainage, payment
    -- terms; no service fee): what the contractor proposed on (services/awards.py, _contract). Its milestones are
    -- held to the proposal's at commit (sql/project_guards.sql, proposals_checked).
    select p.currency, p.billing_mode, p.owner_user_id, p.title, o.default_retainage_bps, o.payment_terms_days
      into v_terms
      from public.proposals q
      join public.projects p on p.org_id = q.org_id and p.id = q.project_id
      join public.organizations o on o.id = q.org_id
     where q.org_id = new.org_id and q.id = (to_jsonb(new) ->> 'proposal_id')::uuid;
    if (new.currency, new.billing_mode, new.owner_user_id, new.title, new.retainage_bps, new.payment_terms_days,
        new.service_fee_bps)
       is distinct from (v_terms.currency, v_terms.billing_mode, v_terms.owner_user_id, v_terms.title,
                         v_terms.default_retainage_bps, v_terms.payment_terms_days, 0) then
      raise exception 'an awarded engagement takes its project''s currency, billing mode, owner and title and the organization''s terms'
        using errcode = '23514';
    end if;
    new.sent_at := now();
    new.responded_at := now();
    return new;
  end if;
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
  -- Completion billing (sql/completion.sql): an engagement billed on completion is completed by its final payment,
  -- once that is authorized and approved by every step (completion_settled), and by nothing else; whoever's
  -- transaction settled it (the reviewer of the last task, or an approval step's decider) and from paused too.
  if old.billing_mode = 'completion' and new.status = 'completed' and old.status is distinct from 'completed' then
    if old.status not in ('active', 'paused') or not public.completion_settled(old.org_id, old.id) then
      raise exception 'an engagement billed on completion is completed by its final payment, once approved'
        using errcode = '23514';
    end if;
    if (to_jsonb(new) - array['status', 'completed_at', 'updated_at'])
       is distinct from (to_jsonb(old) - array['status', 'completed_at', 'updated_at']) then
      raise exception 'completing an engagement changes nothing else' using errcode = '23514';
    end if;
    new.completed_at := now();
    return new;
  end if;
  -- Which moves exist and who makes each: domain.engagements.ACTIONS, through its twin in sql/rules.sql.
  v_move_roles := public.engagement_move_roles(old.status, new.status);
  if new.status is distinct from old.status and cardinality(v_move_roles) = 0 then
    raise exception 'an engagement cannot go from % to %', old.status, new.status using errcode = '23514';
  end if;
  if v_role = 'contractor' then
    -- The contractor answers the work request, and changes nothing else.
    if not 'contractor' = any (v_move_roles)
       or (to_jsonb(new) - v_response_columns) is distinct from (to_jsonb(old) - v_response_columns) then
      raise exception 'a contractor can only accept or decline a work request' using errcode = '42501';
    end if;
  elsif v_role is not null and new.status is distinct from old.status and not v_role = any (v_move_roles) then
    if 'contractor' = any (v_move_roles) then
      raise exception 'only the contractor accepts or declines a work request' using errcode = '42501';
    end if;
    raise exception 'only % move an engagement from % to %', array_to_string(v_move_roles, ' or '), old.status,
      new.status using errcode = '42501';
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
  if (to_jsonb(new) ->> 'proposal_id') is distinct from (to_jsonb(old) ->> 'proposal_id') then
    raise exception 'an engagement stays linked to the proposal it was awarded from' using errcode = '23514';
  end if;
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
  v_refusal text;
begin
  -- Read as the caller, under its policies, and only in the milestone's own organization and contractor:
  -- another's engagement is not found (a new milestone under it then fails its foreign key).
  select e.status into v_engagement_status from public.engagements e
   where e.id = case when tg_op = 'DELETE' then old.engagement_id else new.engagement_id end
     and e.org_id = case when tg_op = 'DELETE' then old.org_id else new.org_id end
     and e.contractor_id = case when tg_op = 'DELETE' then old.contractor_id else new.contractor_id end;
  if tg_op = 'INSERT' then
    if new.status <> 'planned' or new.submitted_at is not null then
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
  -- Approved is final, but for a payment approval's rejection (issue 18): its invoice voided in this transaction
  -- by a rejected step (invoice_approvals_apply, sql/controls.sql) sends the work back to the contractor.
  if old.status = 'approved' and new.status = 'planned'
     and (to_jsonb(new) - array['status', 'updated_at']) is not distinct from (to_jsonb(old) - array['status', 'updated_at'])
     and (exists (select 1 from public.invoices i
                   where i.org_id = old.org_id and i.milestone_id = old.id and i.status = 'void' and i.voided_at = now())
          or public.task_invoice_voided_now(old.org_id, old.id)) then
    null;
  elsif old.status in ('approved', 'cancelled') and (to_jsonb(new) - 'updated_at') is distinct from (to_jsonb(old) - 'updated_at') then
    raise exception 'milestone is % and cannot be changed', old.status using errcode = '23514';
  end if;
  if new.engagement_id is distinct from old.engagement_id or new.org_id is distinct from old.org_id then
    raise exception 'a milestone stays with its engagement' using errcode = '23514';
  end if;
  -- Which moves exist, who makes each and on which engagements: domain.engagements.MILESTONE_MOVES, through
  -- its twin in sql/rules.sql. A contractor changes nothing but the status it moves.
  if new.status is distinct from old.status then
    v_refusal := public.milestone_move_refusal(old.status, new.status, public.app_role(), v_engagement_status);
  end if;
  if v_refusal = 'illegal' then
    raise exception 'a milestone cannot go from % to %', old.status, new.status using errcode = '23514';
  end if;
  if public.app_role() = 'contractor' and (new.status is not distinct from old.status or v_refusal = 'role'
       or (to_jsonb(new) - array['status', 'updated_at']) is distinct from (to_jsonb(old) - array['status', 'updated_at'])) then
    raise exception 'a contractor only marks a planned milestone submitted, with its evidence' using errcode = '42501';
  end if;
  if v_refusal = 'role' then
    raise exception 'only the contractor marks work submitted; the project owner or an admin decides on it'
      using errcode = '42501';
  end if;
  if v_engagement_status in ('awaiting_acceptance', 'completed', 'declined', 'cancelled')
     and (to_jsonb(new) - array['updated_at', 'contractor_id']) is distinct from (to_jsonb(old) - array['updated_at', 'contractor_id']) then
    raise exception 'the milestones of an engagement that is % cannot be changed', replace(v_engagement_status, '_', ' ')
      using errcode = '23514';
  end if;
  -- A milestone's terms (amount, due date, title, deliverable) are edited directly only in a draft
  -- (domain.engagements.EDITABLE); after that only a change order changes them (DESIGN.md section 3), whoever
  -- writes, the owner role included: an adjust line of a change order issued in this transaction must record
  -- this very change, before and after. Otherwise an owner could raise an amount with a plain UPDATE, no
  -- change order and no audit event, and approving would pay it.
  if v_engagement_status is distinct from 'draft' then  -- an engagement the writer cannot see is no draft
    declare
      v_after jsonb := jsonb_build_object('title', new.title, 'deliverable', new.deliverable,
                                          'amount_minor', new.amount_minor, 'due_date', new.due_date);
      v_before jsonb := jsonb_build_object('title', old.title, 'deliverable', old.deliverable,
                                           'amount_minor', old.amount_minor, 'due_date', old.due_date);
      v_changed jsonb;
    begin
      if v_after is distinct from v_before then
        select jsonb_object_agg(t.key, t.value) into v_changed
          from jsonb_each(v_after) t where t.value is distinct from v_before -> t.key;
        -- from the engagement's change orders of this transaction (created_at = now()) to their lines
        if not exists (
            select 1 from public.change_orders c
              join public.change_order_lines l on l.org_id = c.org_id and l.change_order_id = c.id
             where c.org_id = new.org_id and c.engagement_id = new.engagement_id and c.created_at = now()
               and l.milestone_id = new.id and l.kind = 'adjust'
               and l.after @> v_changed and v_after @> l.after and v_before @> l.before) then
          raise exception 'once the work request is sent, a milestone''s amount, due date, title and deliverable change only by change order'
            using errcode = '23514';
        end if;
      end if;
    end;
  end if;
  if v_refusal = 'engagement' then
    raise exception 'work is submitted only on an active engagement, and reviewed only on an active or paused one'
      using errcode = '23514';
  end if;
  -- Work moves only with its evidence and its decision (DESIGN.md section 3): submitted with a submission
  -- that awaits review; approved by an approving review; back to planned by a dispute or route-back partial.
  if new.status is distinct from old.status and new.status <> 'cancelled' then
    select s.id, r.decision, r.partial_policy, r.approved_amount_minor
      into v_latest from public.submissions s left join public.reviews r on r.org_id = s.org_id and r.submission_id = s.id
     where s.org_id = new.org_id and s.milestone_id = new.id order by s.revision desc limit 1;
    if not coalesce((case old.status || '>' || new.status
             when 'planned>submitted' then v_latest.id is not null and v_latest.decision is null
             when 'submitted>planned' then v_latest.decision = 'dispute'
                                           or (v_latest.decision = 'partial' and v_latest.partial_policy = 'route_back')
             when 'approved>planned' then exists (select 1 from public.invoices i
                                                  where i.org_id = old.org_id and i.milestone_id = old.id
                                                    and i.status = 'void' and i.voided_at = now())
                                          or public.task_invoice_voided_now(old.org_id, old.id)
             when 'submitted>approved' then v_latest.decision = 'approve'
                                            or (v_latest.decision = 'partial' and v_latest.partial_policy = 'split'
                                                and new.amount_minor = v_latest.approved_amount_minor)
             else false end), false) then
      raise exception 'a milestone goes from % to % only with a submission and its review', old.status, new.status
        using errcode = '23514';
    end if;
  end if;
  -- When the work began waiting for review, the review queue's order (revision 0021): stamped by the move to
  -- submitted and kept through every other update, a change order's included; nobody writes it.
  if new.status = 'submitted' and old.status is distinct from 'submitted' then
    new.submitted_at := now();
  elsif new.submitted_at is distinct from old.submitted_at then
    raise exception 'when work was submitted is recorded by the move to submitted itself' using errcode = '42501';
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

