-- From project to contract (issue 19): the guards of projects, project_invitations, proposals, proposal_milestones and
-- proposal_files, and their checks at commit. They call the rules' SQL twins of sql/projects.sql (the award's
-- guarantees are listed at its top); sql/engagements.sql lets an engagement start active only from an award.

set local check_function_bodies = off;
-- ---------------------------------------------------------------------------------------------
-- Guards. They read as the caller, under its policies: a row the caller may not see is not found.
-- ---------------------------------------------------------------------------------------------

create or replace function projects_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_move_roles text[];
begin
  if tg_op = 'INSERT' then
    if new.status <> 'open'
       or num_nonnulls(new.awarded_by, new.awarded_at, new.cancelled_by, new.cancelled_at, new.cancel_reason) > 0 then
      raise exception 'a new project starts open for proposals' using errcode = '23514';
    end if;
    if v_role is not null then
      if new.created_by is distinct from v_user then
        raise exception 'a project is opened in the name of the user opening it' using errcode = '42501';
      end if;
      if not public.can_decide(v_role, v_user, new.owner_user_id) then
        raise exception 'a project owner opens projects they own; an admin can name another owner' using errcode = '42501';
      end if;
      if new.deadline < public.project_today() then
        raise exception 'the deadline for proposals cannot be in the past' using errcode = '23514';
      end if;
    end if;
    new.created_at := now();
    new.updated_at := now();
    return new;
  end if;
  if v_role is not null and not public.can_decide(v_role, v_user, old.owner_user_id) then
    raise exception 'only this project''s owner or an admin changes it' using errcode = '42501';
  end if;
  if (new.id, new.org_id, new.created_by, new.created_at) is distinct from (old.id, old.org_id, old.created_by, old.created_at) then
    raise exception 'a project keeps its id, organization and creator' using errcode = '23514';
  end if;
  if new.status is distinct from old.status then
    v_move_roles := public.project_move_roles(old.status, new.status);
    if cardinality(v_move_roles) = 0 then
      raise exception 'a project cannot go from % to %', old.status, new.status using errcode = '23514';
    end if;
    if v_role is not null and not v_role = any (v_move_roles) then
      raise exception 'only % move a project from % to %', array_to_string(v_move_roles, ' or '), old.status, new.status
        using errcode = '42501';
    end if;
  elsif old.status <> 'open' and (to_jsonb(new) - 'updated_at') is distinct from (to_jsonb(old) - 'updated_at') then
    raise exception 'a project that is % cannot be changed', old.status using errcode = '23514';
  end if;
  if v_role is not null then
    if new.deadline is distinct from old.deadline and new.deadline < public.project_today() then
      raise exception 'the deadline for proposals cannot be in the past' using errcode = '23514';
    end if;
    if new.owner_user_id is distinct from old.owner_user_id and v_role <> 'admin' then
      raise exception 'only an admin names another owner for a project' using errcode = '42501';
    end if;
    if (new.awarded_by is distinct from old.awarded_by and new.awarded_by is distinct from v_user)
       or (new.cancelled_by is distinct from old.cancelled_by and new.cancelled_by is distinct from v_user) then
      raise exception 'a move is recorded in the name of the user making it' using errcode = '42501';
    end if;
  end if;
  if exists (select 1 from unnest(public.project_fixed_once_proposed()) k
              where to_jsonb(new) -> k is distinct from to_jsonb(old) -> k)
     and exists (select 1 from public.proposals q where q.org_id = old.org_id and q.project_id = old.id) then
    raise exception 'what a project asks (its title, description, currency and billing mode) is fixed once a contractor has proposed'
      using errcode = '23514';
  end if;
  if new.awarded_at is distinct from old.awarded_at then new.awarded_at := now(); end if;
  if new.cancelled_at is distinct from old.cancelled_at then new.cancelled_at := now(); end if;
  return new;
end
$$;

-- At commit: an awarded project has exactly one accepted proposal, its engagement, and nothing left submitted; a
-- cancelled one has no proposal left submitted or accepted.
create or replace function projects_settled() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_status text;
  v_accepted uuid[];
  v_submitted integer;
begin
  select p.status into v_status from public.projects p where p.org_id = new.org_id and p.id = new.id;
  if v_status is null or v_status = 'open' then
    return null;
  end if;
  select array_agg(q.id) filter (where q.status = 'accepted'), count(*) filter (where q.status = 'submitted')
    into v_accepted, v_submitted
    from public.proposals q where q.org_id = new.org_id and q.project_id = new.id;
  if v_submitted > 0 then
    raise exception 'a project that is % leaves no proposal waiting: accept or decline each', v_status
      using errcode = '23514';
  end if;
  if v_status = 'cancelled' and cardinality(v_accepted) > 0 then
    raise exception 'a cancelled project has no accepted proposal' using errcode = '23514';
  end if;
  if v_status = 'awarded' and (cardinality(v_accepted) is distinct from 1 or not exists (
       select 1 from public.engagements e where e.org_id = new.org_id and e.proposal_id = v_accepted[1])) then
    raise exception 'an awarded project has exactly one accepted proposal, and its engagement' using errcode = '23514';
  end if;
  return null;
end
$$;

create or replace function project_invitations_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_row public.project_invitations := case when tg_op = 'DELETE' then old else new end;
  v_project record;
begin
  select p.status, p.owner_user_id into v_project from public.projects p
   where p.org_id = v_row.org_id and p.id = v_row.project_id;
  if not found then
    return case when tg_op = 'DELETE' then old else new end;  -- the foreign key refuses an insert
  end if;
  if public.app_role() is not null and not public.can_decide(public.app_role(), public.app_user_id(), v_project.owner_user_id) then
    raise exception 'only this project''s owner or an admin invites contractors to it' using errcode = '42501';
  end if;
  if v_project.status <> 'open' then
    raise exception 'invitations change only while the project is open' using errcode = '23514';
  end if;
  if tg_op = 'DELETE' then
    -- The project's row lock (as services/projects.update_project takes it), which a new proposal's foreign key
    -- waits for: a proposal inserted meanwhile has committed before the check below reads, or its own check at
    -- commit (proposals_checked) finds the invitation gone. Without it each could miss the other.
    perform 1 from public.projects p where p.org_id = old.org_id and p.id = old.project_id for update;
    if exists (select 1 from public.proposals q
                where q.org_id = old.org_id and q.project_id = old.project_id and q.contractor_id = old.contractor_id) then
      raise exception 'a contractor that has proposed stays invited' using errcode = '23514';
    end if;
    return old;
  end if;
  new.invited_at := now();
  return new;
end
$$;

create or replace function proposals_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_project record;
  v_refusal text;
  v_move_roles text[];
  v_contractor_columns text[] := array['price_minor', 'timeline', 'note', 'status', 'updated_at', 'withdrawn_at'];
  v_decision_columns text[] := array['status', 'updated_at', 'decided_by', 'decided_at'];
begin
  select p.status, p.deadline, p.audience, p.owner_user_id, p.currency into v_project from public.projects p
   where p.org_id = new.org_id and p.id = new.project_id;
  if tg_op = 'INSERT' then
    if new.status <> 'submitted' or num_nonnulls(new.withdrawn_at, new.decided_by, new.decided_at) > 0 then
      raise exception 'a new proposal is submitted' using errcode = '23514';
    end if;
    if v_role is not null then
      if new.submitted_by is distinct from v_user then
        raise exception 'a proposal is submitted in the name of the user submitting it' using errcode = '42501';
      end if;
      if v_project.status is null then
        raise exception 'there is no project open to your proposals there' using errcode = '42501';
      end if;
      v_refusal := public.proposal_refusal(v_project.status, v_project.deadline, public.project_today(),
        v_project.audience,
        exists (select 1 from public.project_invitations i where i.org_id = new.org_id
                   and i.project_id = new.project_id and i.contractor_id = new.contractor_id),
        exists (select 1 from public.proposals q where q.org_id = new.org_id
                   and q.project_id = new.project_id and q.contractor_id = new.contractor_id));
      if v_refusal is not null then
        raise exception '%', public.proposal_refusal_message(v_refusal)
          using errcode = case v_refusal when 'duplicate' then '23505' else '23514' end;
      end if;
    end if;
    -- Its price is in its project's currency, as it was when the proposal was written (proposals_checked holds it
    -- to the project's at commit: a currency changed meanwhile fails the proposal, never re-reads its amounts).
    new.currency := coalesce(new.currency, v_project.currency);
    if new.currency is distinct from v_project.currency then
      raise exception 'a proposal is priced in its project''s currency' using errcode = '23514';
    end if;
    new.submitted_at := now();
    new.updated_at := now();
    return new;
  end if;
  if (new.id, new.org_id, new.project_id, new.contractor_id, new.currency, new.submitted_by, new.submitted_at)
     is distinct from (old.id, old.org_id, old.project_id, old.contractor_id, old.currency, old.submitted_by,
                       old.submitted_at) then
    raise exception 'a proposal keeps its project, contractor and who submitted it' using errcode = '23514';
  end if;
  if new.status is distinct from old.status then
    v_move_roles := public.proposal_move_roles(old.status, new.status);
    if cardinality(v_move_roles) = 0 then
      raise exception 'a proposal cannot go from % to %', old.status, new.status using errcode = '23514';
    end if;
    if v_role is not null and not v_role = any (v_move_roles) then
      raise exception 'only % move a proposal from % to %', array_to_string(v_move_roles, ' or '), old.status,
        new.status using errcode = '42501';
    end if;
  elsif old.status <> 'submitted' and (to_jsonb(new) - 'updated_at') is distinct from (to_jsonb(old) - 'updated_at') then
    raise exception 'a proposal that is % cannot be changed', old.status using errcode = '23514';
  end if;
  if v_role = 'contractor' then
    if (to_jsonb(new) - v_contractor_columns) is distinct from (to_jsonb(old) - v_contractor_columns) then
      raise exception 'a contractor changes its proposal''s price, timeline and note, or withdraws it' using errcode = '42501';
    end if;
    if new.status = 'withdrawn' then
      -- A withdrawal (domain.projects.may_withdraw): while the project is open, the deadline passed or not; and
      -- nothing else changes with it.
      if (to_jsonb(new) - array['status', 'withdrawn_at', 'updated_at'])
         is distinct from (to_jsonb(old) - array['status', 'withdrawn_at', 'updated_at']) then
        raise exception 'a withdrawal changes nothing else of the proposal' using errcode = '42501';
      end if;
      if not public.project_allows_withdrawal(v_project.status) then
        raise exception '%', public.proposal_refusal_message('closed') using errcode = '23514';
      end if;
    elsif not public.project_takes_proposals(v_project.status, v_project.deadline, public.project_today()) then
      raise exception '%', public.proposal_refusal_message(
        case when v_project.status is distinct from 'open' then 'closed' else 'deadline' end) using errcode = '23514';
    end if;
  elsif v_role is not null then
    if (to_jsonb(new) - v_decision_columns) is distinct from (to_jsonb(old) - v_decision_columns) then
      raise exception 'a proposal''s terms are the contractor''s: the project''s owner accepts or declines it'
        using errcode = '42501';
    end if;
    if not public.can_decide(v_role, v_user, v_project.owner_user_id) then
      raise exception 'only this project''s owner or an admin accepts or declines its proposals' using errcode = '42501';
    end if;
    if v_project.status is distinct from 'open' then
      raise exception 'proposals are accepted or declined while their project is open' using errcode = '23514';
    end if;
    if new.decided_by is distinct from old.decided_by and new.decided_by is distinct from v_user then
      raise exception 'a decision is recorded in the name of the user making it' using errcode = '42501';
    end if;
  end if;
  if new.withdrawn_at is distinct from old.withdrawn_at then new.withdrawn_at := now(); end if;
  if new.decided_at is distinct from old.decided_at then new.decided_at := now(); end if;
  new.updated_at := now();
  return new;
end
$$;

-- At commit: a proposal still submitted is on a project still open (read again now: an award that committed while
-- this one was written wins), a new one still invited, and its milestones share its price; an accepted one is its
-- project's award and has its engagement, with as many milestones and the same total.
create or replace function proposals_checked() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_row record;
  v_count integer;
  v_total numeric;
  v_engagement uuid;
begin
  select q.status, q.price_minor, q.project_id, q.currency into v_row from public.proposals q
   where q.org_id = new.org_id and q.id = new.id;
  if v_row.status is null then
    return null;
  end if;
  select count(*), coalesce(sum(m.amount_minor), 0) into v_count, v_total
    from public.proposal_milestones m where m.org_id = new.org_id and m.proposal_id = new.id;
  if v_row.status = 'submitted' then
    if not exists (select 1 from public.projects p where p.org_id = new.org_id and p.id = v_row.project_id
                      and p.status = 'open') then
      raise exception '%', public.proposal_refusal_message('closed') using errcode = '23514';
    end if;
    if not exists (select 1 from public.projects p where p.org_id = new.org_id and p.id = v_row.project_id
                      and p.currency = v_row.currency) then
      raise exception 'the project''s currency changed while this proposal was written; write it again in the new one'
        using errcode = '23514';
    end if;
    -- A new proposal's invitation, read again now: one taken back while this proposal was written (its foreign key
    -- waited for the project's lock, which the taking back holds) fails it here.
    if tg_op = 'INSERT' and not exists (
         select 1 from public.projects p where p.org_id = new.org_id and p.id = v_row.project_id and p.audience = 'all'
         union all
         select 1 from public.project_invitations i
          where i.org_id = new.org_id and i.project_id = v_row.project_id and i.contractor_id = new.contractor_id) then
      raise exception '%', public.proposal_refusal_message('not_invited') using errcode = '23514';
    end if;
    if v_count = 0 or v_total <> public.proposal_task_pool(new.org_id, new.id) then
      raise exception 'a proposal''s milestones add up to its price exactly (less the advance, on a completion project)'
        using errcode = '23514';
    end if;
  elsif v_row.status = 'accepted' then
    -- Accepting is the award: the project is awarded in the same transaction (projects_settled then holds the rest:
    -- every other proposal decided). Without this an accepted proposal could leave its project open, taking more.
    if not exists (select 1 from public.projects p where p.org_id = new.org_id and p.id = v_row.project_id
                      and p.status = 'awarded') then
      raise exception 'a proposal is accepted only by awarding its project' using errcode = '23514';
    end if;
    -- Its engagement has exactly the milestones offered (each one's title, deliverable, amount and due date in its
    -- place), so what was accepted is what is bought; its terms are checked by engagements_guard at its insert.
    select e.id into v_engagement from public.engagements e where e.org_id = new.org_id and e.proposal_id = new.id;
    if v_engagement is null or exists (
         (select m.seq, m.title, m.deliverable, m.amount_minor, m.due_date from public.proposal_milestones m
           where m.org_id = new.org_id and m.proposal_id = new.id
          except all
          select m.seq, m.title, m.deliverable, m.amount_minor, m.due_date from public.milestones m
           where m.org_id = new.org_id and m.engagement_id = v_engagement)
         union all
         (select m.seq, m.title, m.deliverable, m.amount_minor, m.due_date from public.milestones m
           where m.org_id = new.org_id and m.engagement_id = v_engagement
          except all
          select m.seq, m.title, m.deliverable, m.amount_minor, m.due_date from public.proposal_milestones m
           where m.org_id = new.org_id and m.proposal_id = new.id)) then
      raise exception 'an accepted proposal becomes one engagement with exactly the milestones it offered'
        using errcode = '23514';
    end if;
  end if;
  return null;
end
$$;

-- A proposal's milestones and files change with the proposal, by its contractor, while it may still be changed;
-- under the proposal's row lock, so never while the award (which holds it) reads them.
create or replace function proposal_parts_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid := case when tg_op = 'DELETE' then old.org_id else new.org_id end;
  v_proposal_id uuid := case when tg_op = 'DELETE' then old.proposal_id else new.proposal_id end;
  v_contractor uuid := case when tg_op = 'DELETE' then old.contractor_id else new.contractor_id end;
  v_proposal record;
begin
  if public.app_role() is null then
    return case when tg_op = 'DELETE' then old else new end;
  end if;
  select q.status, q.contractor_id, q.project_id into v_proposal from public.proposals q
   where q.org_id = v_org and q.id = v_proposal_id
     for no key update;
  if not found or v_proposal.contractor_id is distinct from v_contractor then
    raise exception 'a proposal''s milestones and files are its own contractor''s to change' using errcode = '42501';
  end if;
  if v_proposal.status <> 'submitted' then
    raise exception 'a proposal that is % cannot be changed', v_proposal.status using errcode = '23514';
  end if;
  if not exists (select 1 from public.projects p where p.org_id = v_org and p.id = v_proposal.project_id
                    and public.project_takes_proposals(p.status, p.deadline, public.project_today())) then
    raise exception '%', public.proposal_refusal_message('closed') using errcode = '23514';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end
$$;

-- At commit, after any change to a proposal's milestones: they share its price exactly (a price changed with them
-- is checked by proposals_checked as well).
create or replace function proposal_milestones_checked() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid := case when tg_op = 'DELETE' then old.org_id else new.org_id end;
  v_proposal_id uuid := case when tg_op = 'DELETE' then old.proposal_id else new.proposal_id end;
begin
  if exists (select 1 from public.proposals q where q.org_id = v_org and q.id = v_proposal_id and q.status = 'submitted'
               and public.proposal_task_pool(v_org, v_proposal_id)
                   is distinct from (select coalesce(sum(m.amount_minor), 0) from public.proposal_milestones m
                                      where m.org_id = v_org and m.proposal_id = v_proposal_id)) then
    raise exception 'a proposal''s milestones add up to its price exactly (less the advance, on a completion project)'
      using errcode = '23514';
  end if;
  return null;
end
$$;

do $$
begin
  if to_regclass('public.proposal_files') is not null then
    drop trigger if exists projects_guard on public.projects;
    create trigger projects_guard before insert or update on public.projects
      for each row execute function projects_guard();
    drop trigger if exists projects_settled on public.projects;
    create constraint trigger projects_settled after update on public.projects
      deferrable initially deferred for each row execute function projects_settled();
    drop trigger if exists project_invitations_guard on public.project_invitations;
    create trigger project_invitations_guard before insert or delete on public.project_invitations
      for each row execute function project_invitations_guard();
    drop trigger if exists proposals_guard on public.proposals;
    create trigger proposals_guard before insert or update on public.proposals
      for each row execute function proposals_guard();
    drop trigger if exists proposals_checked on public.proposals;
    create constraint trigger proposals_checked after insert or update on public.proposals
      deferrable initially deferred for each row execute function proposals_checked();
    drop trigger if exists proposal_milestones_guard on public.proposal_milestones;
    create trigger proposal_milestones_guard before insert or delete on public.proposal_milestones
      for each row execute function proposal_parts_guard();
    drop trigger if exists proposal_milestones_checked on public.proposal_milestones;
    create constraint trigger proposal_milestones_checked after insert or delete on public.proposal_milestones
      deferrable initially deferred for each row execute function proposal_milestones_checked();
    drop trigger if exists proposal_files_guard on public.proposal_files;
    create trigger proposal_files_guard before insert or delete on public.proposal_files
      for each row execute function proposal_parts_guard();
  end if;
end
$$;
