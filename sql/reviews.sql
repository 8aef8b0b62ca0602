-- Submissions, evidence and reviews: the guard triggers and the checks at commit. Policies and
-- grants: sql/rls_policies.sql; evidence never changes for anyone: sql/append_only.sql.

set local check_function_bodies = off;

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
  -- never tells a caller about rows its policies hide (no person and not the owner role: refused too).
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and (v_role <> 'contractor' or new.org_id is distinct from public.app_org_id()
                                 or new.contractor_id is distinct from public.app_contractor_id()
                                 or new.submitted_by is distinct from public.app_user_id())) then
    raise exception 'only the contractor''s user submits work, in its own name' using errcode = '42501';
  end if;
  -- Only the row's own organization and contractor are read: another's milestone is not found, like one
  -- that does not exist, and nothing of it is read.
  select * into v_milestone from public.milestones m
   where m.id = new.milestone_id and m.org_id = new.org_id and m.contractor_id = new.contractor_id;
  if not found then
    raise exception 'milestone % not found', new.milestone_id using errcode = '23503';
  end if;
  select e.status into v_engagement_status from public.engagements e
   where e.id = v_milestone.engagement_id and e.org_id = new.org_id;
  if v_engagement_status is distinct from 'active' then
    raise exception 'work is submitted only on an active engagement' using errcode = '23514';
  end if;
  if v_milestone.status <> 'planned' then
    raise exception 'work is submitted for a planned milestone; this one is %', v_milestone.status using errcode = '23514';
  end if;
  select s.revision, r.decision into v_previous from public.submissions s
    left join public.reviews r on r.org_id = s.org_id and r.submission_id = s.id
   where s.org_id = new.org_id and s.milestone_id = new.milestone_id order by s.revision desc limit 1;
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
  if jsonb_array_length(new.links) = 0
     and not exists (select 1 from public.evidence_files f where f.org_id = new.org_id and f.submission_id = new.id) then
    raise exception 'a submission carries at least one file or link' using errcode = '23514';
  end if;
  if (select m.status from public.milestones m where m.id = new.milestone_id and m.org_id = new.org_id) = 'planned'
     and not exists (select 1 from public.reviews r where r.org_id = new.org_id and r.submission_id = new.id) then
    raise exception 'a submission marks its milestone submitted in the same transaction' using errcode = '23514';
  end if;
  return null;
end
$$;

-- At commit: the milestone moved as its review decided (approved, or back to planned).
create or replace function reviews_moved_milestone() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if (select m.status from public.milestones m where m.id = new.milestone_id and m.org_id = new.org_id) = 'submitted'
     and not exists (select 1 from public.submissions s, public.submissions r
                      where r.id = new.submission_id and r.org_id = new.org_id and s.org_id = new.org_id
                        and s.milestone_id = r.milestone_id and s.revision > r.revision) then
    raise exception 'a review moves its milestone (approved, or back to the contractor) in the same transaction' using errcode = '23514';
  end if;
  -- Approval is the only door money leaves by, and it always opens one: an approving review
  -- authorizes its payment (an invoice) in the same transaction.
  -- Under completion billing (sql/completion.sql) approving a task authorizes nothing by itself, but approving the
  -- last open one authorizes the final payment, in the same transaction.
  if (new.decision = 'approve' or new.partial_policy = 'split') and to_regclass('public.invoices') is not null then
    if (select e.billing_mode from public.engagements e join public.milestones m on m.org_id = e.org_id and m.engagement_id = e.id
         where m.org_id = new.org_id and m.id = new.milestone_id) = 'completion' then
      if not exists (select 1 from public.milestones m, public.milestones t
                      where m.org_id = new.org_id and m.id = new.milestone_id and t.org_id = m.org_id
                        and t.engagement_id = m.engagement_id and t.status in ('planned', 'submitted'))
         and not exists (select 1 from public.invoices i, public.milestones m
                          where m.org_id = new.org_id and m.id = new.milestone_id and i.org_id = m.org_id
                            and i.engagement_id = m.engagement_id and i.kind = 'final' and i.voided_at is null) then
        raise exception 'approving the last task authorizes the final payment in the same transaction' using errcode = '23514';
      end if;
    elsif not exists (select 1 from public.invoices i where i.org_id = new.org_id and i.review_id = new.id) then
      raise exception 'an approval authorizes its payment (an invoice) in the same transaction' using errcode = '23514';
    end if;
  end if;
  return null;
end
$$;

-- At commit: a file's stored bytes are as many as its recorded size.
create or replace function evidence_files_complete() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if new.size_bytes is distinct from (select sum(octet_length(c.data)) from public.evidence_chunks c
                                       where c.org_id = new.org_id and c.file_id = new.id) then
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
  -- Tenancy first, before anything is read (no person and not the owner role: refused too).
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and (not public.is_manager(v_role) or new.org_id is distinct from public.app_org_id())) then
    raise exception 'only the engagement''s project owner or an admin decides' using errcode = '42501';
  end if;
  -- Only the row's own organization and contractor are read: another's submission is not found.
  select * into v_submission from public.submissions s
   where s.id = new.submission_id and s.org_id = new.org_id and s.contractor_id = new.contractor_id;
  if not found then
    raise exception 'submission % not found', new.submission_id using errcode = '23503';
  end if;
  select * into v_milestone from public.milestones m where m.id = v_submission.milestone_id and m.org_id = new.org_id;
  select * into v_engagement from public.engagements e where e.id = v_milestone.engagement_id and e.org_id = new.org_id;
  if new.milestone_id is distinct from v_submission.milestone_id then
    raise exception 'a review is of the milestone its submission is for' using errcode = '23514';
  end if;
  if exists (select 1 from public.submissions s
              where s.org_id = new.org_id and s.milestone_id = v_submission.milestone_id and s.revision > v_submission.revision) then
    raise exception 'only the latest revision of a milestone is reviewed' using errcode = '23514';
  end if;
  if v_milestone.status <> 'submitted' then
    raise exception 'the milestone is not awaiting review (it is %)', v_milestone.status using errcode = '23514';
  end if;
  if not public.reviewable(v_engagement.status) then
    raise exception 'work is reviewed on an active or paused engagement' using errcode = '23514';
  end if;
  if v_role is not null then
    if not public.can_decide(v_role, v_user, v_engagement.owner_user_id) then
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
                                            from public.evidence_files f
                                           where f.org_id = new.org_id and f.submission_id = new.submission_id) then
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

