-- Self-billed e-invoices (DESIGN.md section 7b; issue 21): the policies and grants of einvoice_profiles,
-- self_billing_agreements and invoice_acceptances (before new_ids.sql reads the grants), the SQL twin of
-- domain.self_billing.acceptance_state, and the guards: an agreement is confirmed once, by its contractor's user; an
-- answer is the contractor's, to an issued self-billed invoice not yet accepted; and where the organization requires
-- acceptance, nothing not accepted is exported or paid (a rejected invoice never is).
--
-- Uses the policy tools of sql/rls_policies.sql (pg_temp.policy(), the grant helpers).

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Policies and grants.
-- ---------------------------------------------------------------------------------------------

-- einvoice_profiles: finance and admins read every one; a contractor's user reads its own and the organization's
-- (the buyer its invoices name). The organization's own (contractor_id null) is written by admins; a contractor's by
-- admins, finance, or the contractor's own user; always in the writer's own name (updated_by). Never deleted.
select pg_temp.policy('einvoice_profiles', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('einvoice_profiles', 'readers', $p$as restrictive for select using (
  case (select app_role())
    when 'admin' then true
    when 'finance' then true
    when 'contractor' then contractor_id is null or contractor_id = (select app_contractor_id())
    else false
  end)$p$);
select pg_temp.policy('einvoice_profiles', 'writers_insert', $p$as restrictive for insert with check (
  updated_by = (select app_user_id()) and
  case (select app_role())
    when 'admin' then true
    when 'finance' then contractor_id is not null
    when 'contractor' then contractor_id = (select app_contractor_id())
    else false
  end)$p$);
select pg_temp.policy('einvoice_profiles', 'writers_update', $p$as restrictive for update using (
  case (select app_role())
    when 'admin' then true
    when 'finance' then contractor_id is not null
    when 'contractor' then contractor_id = (select app_contractor_id())
    else false
  end) with check (updated_by = (select app_user_id()))$p$);
select pg_temp.policy('einvoice_profiles', 'never_deleted', $p$as restrictive for delete using (false)$p$);
select pg_temp.grant_to_app('einvoice_profiles', 'select, insert');
select pg_temp.grant_update_to_app('einvoice_profiles', '{legal_name, street, city, postal_code, country, tax_id,
  tax_scheme, endpoint_scheme, endpoint_id, vat_category, vat_bps, updated_by}');
select pg_temp.grant_to_worker('einvoice_profiles', 'select');  -- the e-invoice names both parties

-- self_billing_agreements: admins record one (in their own name); finance and admins read every one, the contractor's
-- user its own, and confirms it (in its own name). Never deleted.
select pg_temp.policy('self_billing_agreements', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('self_billing_agreements', 'readers', $p$as restrictive for select using (
  case (select app_role())
    when 'admin' then true
    when 'finance' then true
    when 'contractor' then contractor_id = (select app_contractor_id())
    else false
  end)$p$);
select pg_temp.policy('self_billing_agreements', 'recorded_by_an_admin', $p$as restrictive for insert with check (
  (select app_role()) = 'admin' and recorded_by = (select app_user_id()))$p$);
select pg_temp.policy('self_billing_agreements', 'confirmed_by_its_contractor', $p$as restrictive for update
  using ((select app_role()) = 'contractor' and contractor_id = (select app_contractor_id()))
  with check (confirmed_by = (select app_user_id()))$p$);
select pg_temp.policy('self_billing_agreements', 'never_deleted', $p$as restrictive for delete using (false)$p$);
select pg_temp.grant_to_app('self_billing_agreements', 'select, insert, update (confirmed_by)');
select pg_temp.grant_to_worker('self_billing_agreements', 'select');  -- no e-invoice without one confirmed

-- invoice_acceptances: the contractor's answers. Staff read every one (an owner learns why its work's invoice was
-- rejected); the contractor's user reads and writes its own, in its own name. Append-only (sql/append_only.sql).
select pg_temp.contractor_scoped('invoice_acceptances');
select pg_temp.policy('invoice_acceptances', 'answered_by_its_contractor', $p$as restrictive for insert with check (
  (select app_role()) = 'contractor' and contractor_id = (select app_contractor_id())
  and decided_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('invoice_acceptances', 'select, insert');
select pg_temp.grant_to_worker('invoice_acceptances', 'select');  -- the notice of a rejection

-- The admin's settings (services/organizations.update_settings), beside the settings page's other columns.
do $$
begin
  if exists (select 1 from pg_attribute where attrelid = 'public.organizations'::regclass and attname = 'acceptance_days') then
    perform pg_temp.grant_update_to_app('organizations', '{acceptance_days, acceptance_required}');
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- The rule: twin of domain.self_billing.acceptance_state and stops_payment (tests/integration/
-- test_self_billing_rules.py holds them equal). Silence counts in whole days of 24 hours, as Python's timedelta.
-- ---------------------------------------------------------------------------------------------

create or replace function acceptance_state(p_issued_at timestamptz, p_last_decision text, p_days integer,
  p_now timestamptz, p_voided boolean default false) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select case
    when p_voided then 'void'  -- first: an answer given before the void stands for nothing now
    when p_last_decision = 'accepted' then 'accepted'
    when p_last_decision = 'rejected' then 'rejected'
    when p_issued_at is null then 'not_issued'
    when p_now >= p_issued_at + make_interval(hours => 24 * p_days) then 'accepted_by_silence'
    else 'awaiting'
  end
$$;

create or replace function acceptance_stops_payment(p_state text, p_required boolean) returns boolean
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select p_state = 'rejected' or (p_required and p_state not in ('accepted', 'accepted_by_silence'))
$$;
-- Pure functions. The guards and the definers below call them; the web role calls acceptance_state() too (a
-- contractor's home lists the self-billed invoices awaiting its answer: queries/self_billing.to_answer).
revoke all on function acceptance_stops_payment(text, boolean) from public;
do $$
begin
  if to_regclass('public.invoice_acceptances') is not null then
    perform pg_temp.grant_execute('acceptance_state(timestamptz, text, integer, timestamptz, boolean)');
  else
    revoke all on function acceptance_state(timestamptz, text, integer, timestamptz, boolean) from public;
  end if;
end
$$;

-- What the payment guards below add to their refusal (the services show it beside the refusal): a rejection stops
-- payment wherever, the rest only where the organization requires acceptance.
create or replace function acceptance_hint(p_state text) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select case p_state
    when 'rejected' then 'A rejected self-billed invoice is not paid until the contractor accepts it.'
    else 'The organization requires the contractor''s acceptance before payment.'
  end
$$;
revoke all on function acceptance_hint(text) from public;

-- An invoice's state now, read as the owner (a guard's helper: the worker may not read every table it reads).
create or replace function invoice_acceptance(p_org_id uuid, p_invoice_id uuid) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select public.acceptance_state(
    d.issued_at,
    (select a.decision from public.invoice_acceptances a
      where a.org_id = i.org_id and a.invoice_id = i.id order by a.decided_at desc, a.id desc limit 1),
    d.acceptance_days, now(), i.status = 'void')
  from public.invoices i
  left join public.documents d on d.org_id = i.org_id and d.invoice_id = i.id and d.kind = 'self_billed_invoice'
  where i.org_id = p_org_id and i.id = p_invoice_id
$$;
revoke all on function invoice_acceptance(uuid, uuid) from public;

-- The current organization's invoices among p_invoice_ids (NULL: every open one) whose contractor's answer stops
-- their payment, with the state: for the payment doors and the "why isn't this payable" of pages
-- (queries/payability.acceptance_blocks). Where acceptance is not required only a rejection stops a payment, and
-- only the invoices with one are read. A contractor's user learns only its own contractor's. An exported invoice is
-- not among them: its payment may have gone out already, and a payment that went out is recorded whatever the answer
-- (the guards below stop approved -> exported and approved -> paid only).
create or replace function acceptance_blocks(p_invoice_ids uuid[])
  returns table (invoice_id uuid, state text)
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid := public.app_org_id();
  v_contractor uuid := public.app_contractor_id();
  v_required boolean := coalesce((select g.acceptance_required from public.organizations g where g.id = v_org), false);
begin
  -- The candidates: where acceptance is required, the open invoices asked about; otherwise only a rejection stops a
  -- payment, so only the invoices with one are read, from the answers' side (bench/ap_export.py: an "all due by" export
  -- asks this of 100,000 due invoices, and an organization without rejections pays for none of them). Each
  -- candidate's state is then one probe of its self-billed invoice and of its latest answer.
  return query
  select c.id, s.state
    from (select i.id, i.org_id, i.status
            from public.invoices i
           where v_required and i.org_id = v_org
             and (p_invoice_ids is null or i.id = any (p_invoice_ids))
          union
          select i.id, i.org_id, i.status
            from public.invoice_acceptances a
            join public.invoices i on i.org_id = a.org_id and i.id = a.invoice_id
           where not v_required and a.org_id = v_org and a.decision = 'rejected'
             and (p_invoice_ids is null or a.invoice_id = any (p_invoice_ids))) c
    left join public.documents d on d.org_id = c.org_id and d.invoice_id = c.id and d.kind = 'self_billed_invoice'
    cross join lateral (
      select public.acceptance_state(d.issued_at,
               (select a.decision from public.invoice_acceptances a
                 where a.org_id = c.org_id and a.invoice_id = c.id order by a.decided_at desc, a.id desc limit 1),
               d.acceptance_days, now(), c.status = 'void') as state) s
    join public.invoices i on i.org_id = c.org_id and i.id = c.id
   where i.status in ('pending_approval', 'approved', 'on_hold')
     and (v_contractor is null or i.contractor_id = v_contractor)
     and public.acceptance_stops_payment(s.state, v_required);
end
$$;

-- Where the contractor's answer stands on each of these invoices, for any member who sees them (queries/
-- self_billing.py): staff the organization's (a project owner included, who reads no document, so not when the
-- self-billed invoice was issued), a contractor's user its own contractor's only. The state as the guards judge it, by
-- the database's clock; when it was issued and when silence becomes acceptance. Nothing of another organization.
create or replace function invoice_acceptances_seen(p_invoice_ids uuid[])
returns table (invoice_id uuid, state text, issued_at timestamptz, acceptance_days integer, silence_ends timestamptz,
               acceptance_required boolean)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select i.id,
         public.acceptance_state(d.issued_at, a.decision, d.acceptance_days, now(), i.status = 'void'),
         d.issued_at, coalesce(d.acceptance_days, g.acceptance_days),
         d.issued_at + make_interval(hours => 24 * d.acceptance_days),
         g.acceptance_required
    from public.invoices i
    join public.organizations g on g.id = i.org_id
    left join public.documents d on d.org_id = i.org_id and d.invoice_id = i.id and d.kind = 'self_billed_invoice'
    left join lateral (select a.decision from public.invoice_acceptances a
                        where a.org_id = i.org_id and a.invoice_id = i.id
                        order by a.decided_at desc, a.id desc limit 1) a on true
   where i.org_id = (select public.app_org_id())
     and i.id = any (p_invoice_ids)
     and case (select public.app_role())
           when 'contractor' then i.contractor_id = (select public.app_contractor_id())
           else (select public.app_role()) is not null
         end
$$;
do $$
begin
  if to_regclass('public.invoice_acceptances') is not null then
    perform pg_temp.grant_execute('acceptance_blocks(uuid[])', true);
    perform pg_temp.grant_execute('invoice_acceptances_seen(uuid[])');
  else
    revoke all on function acceptance_blocks(uuid[]) from public;
    revoke all on function invoice_acceptances_seen(uuid[]) from public;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Guards.
-- ---------------------------------------------------------------------------------------------

-- A profile's updated_at is the database's clock.
create or replace function einvoice_profiles_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if tg_op = 'UPDATE' and new.contractor_id is distinct from old.contractor_id then
    raise exception 'an e-invoicing profile stays its party''s' using errcode = '23514';
  end if;
  new.updated_at := now();
  return new;
end
$$;
revoke all on function einvoice_profiles_guard() from public;

-- An agreement is recorded unconfirmed, at the database's clock, and confirmed once; nothing else of it changes.
create or replace function self_billing_agreements_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if tg_op = 'INSERT' then
    if new.confirmed_by is not null or new.confirmed_at is not null then
      raise exception 'a self-billing agreement is confirmed by the contractor, after it is recorded' using errcode = '23514';
    end if;
    new.recorded_at := now();
    return new;
  end if;
  if old.confirmed_by is not null then
    raise exception 'this self-billing agreement was confirmed already' using errcode = '23514';
  end if;
  if (new.org_id, new.id, new.contractor_id, new.agreed_on, new.terms, new.recorded_by, new.recorded_at)
     is distinct from (old.org_id, old.id, old.contractor_id, old.agreed_on, old.terms, old.recorded_by, old.recorded_at)
     or new.confirmed_by is null then
    raise exception 'a self-billing agreement only gets its confirmation' using errcode = '23514';
  end if;
  new.confirmed_at := now();
  return new;
end
$$;
revoke all on function self_billing_agreements_guard() from public;

-- An answer is the invoice's contractor's, to an issued self-billed invoice that is not void and not accepted
-- (by answer or by silence); a second rejection adds nothing. At the database's clock. The invoice's row is locked
-- so that two answers queue (the unique index keeps one acceptance besides). domain.self_billing.answer_problem says
-- the same (tests/integration/test_self_billing_rules.py holds them equal).
--
-- As the owner, and before the policies check the new row: so nothing is read, nor locked, of a row the policies
-- refuse (another organization's, another contractor's name, not a contractor's user), or the refusal would tell
-- whether that invoice exists and where its answer stands. The policy refuses those, in its own words.
create or replace function invoice_acceptances_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_state text;
begin
  if not public.session_bypasses_rls()
     and (new.org_id is distinct from public.app_org_id()
          or public.app_role() is distinct from 'contractor'
          or new.contractor_id is distinct from public.app_contractor_id()
          or new.decided_by is distinct from public.app_user_id()) then
    return new;
  end if;
  -- Only the answering contractor's own invoice is locked: another's is neither locked nor read.
  perform 1 from public.invoices i
   where i.org_id = new.org_id and i.id = new.invoice_id and i.contractor_id = new.contractor_id for update;
  if not found then
    raise exception 'an answer to a self-billed invoice is its contractor''s' using errcode = '23514';
  end if;
  v_state := public.invoice_acceptance(new.org_id, new.invoice_id);
  if v_state = 'void' then
    raise exception 'this self-billed invoice is void: there is nothing to answer' using errcode = '23514';
  elsif v_state = 'not_issued' then
    raise exception 'this self-billed invoice has not been issued yet: there is nothing to answer'
      using errcode = '23514';
  elsif v_state in ('accepted', 'accepted_by_silence') then
    raise exception 'this self-billed invoice is accepted already' using errcode = '23514';
  elsif v_state = 'rejected' and new.decision = 'rejected' then
    raise exception 'this self-billed invoice was rejected already' using errcode = '23514';
  end if;
  new.decided_at := now();
  return new;
end
$$;
revoke all on function invoice_acceptances_guard() from public;

-- While its organization requires acceptance, an invoice not accepted is neither exported (approved -> exported:
-- an AP file, or handed to a payment rail) nor paid (approved -> paid); a rejected one never is. Per statement, as
-- sql/tax.sql's guard: an export moves its whole selection in one. As the owner: the worker may not read every
-- table the rule reads; only the rows the statement moved, which its policies let it see, are read.
create or replace function invoices_acceptance_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_blocked record;
begin
  -- The web's and the worker's statements move their own organization's invoices only (the policies): when it
  -- requires no acceptance, only a rejection stops a payment, and only the moved rows that have one are read (an
  -- export of 100,000 invoices probes the few rejections, not every invoice's answers).
  if not public.session_bypasses_rls()
     and not exists (select 1 from public.organizations g where g.id = public.app_org_id() and g.acceptance_required) then
    if not exists (select 1 from public.invoice_acceptances a
                    where a.org_id = public.app_org_id() and a.decision = 'rejected') then
      return null;  -- nothing rejected in the organization: nothing of the statement's rows is read
    end if;
    select n.invoice_number, 'rejected' as state into v_blocked
      from moved_new n
      join moved_old o on o.org_id = n.org_id and o.id = n.id
     where o.status = 'approved' and n.status in ('exported', 'paid')
       and n.id in (select a.invoice_id from public.invoice_acceptances a
                     where a.org_id = public.app_org_id() and a.decision = 'rejected')
       and public.invoice_acceptance(n.org_id, n.id) = 'rejected'
     order by n.number
     limit 1;
  else
  select n.invoice_number, public.invoice_acceptance(n.org_id, n.id) as state
    into v_blocked
    from moved_new n
    join moved_old o on o.org_id = n.org_id and o.id = n.id
    join public.organizations g on g.id = n.org_id
   where o.status = 'approved' and n.status in ('exported', 'paid')
     and public.acceptance_stops_payment(public.invoice_acceptance(n.org_id, n.id), g.acceptance_required)
   order by n.number
   limit 1;
  end if;
  if v_blocked.invoice_number is not null then
    raise exception 'invoice % cannot be exported or paid: %', v_blocked.invoice_number,
      case v_blocked.state when 'rejected' then 'the contractor rejected its self-billed invoice'
                           else 'the contractor has not accepted its self-billed invoice yet' end
      using errcode = '23514', hint = public.acceptance_hint(v_blocked.state);
  end if;
  return null;
end
$$;
revoke all on function invoices_acceptance_guard() from public;

-- The same for a payout attempt (a payment rail's transfer), refused before the rail is called.
create or replace function payout_attempts_acceptance_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_state text;
begin
  if not public.session_bypasses_rls() and new.org_id is distinct from public.app_org_id() then
    return new;  -- payout_attempts_guard and the policies refuse it; nothing of it is read here
  end if;
  select public.invoice_acceptance(new.org_id, new.invoice_id) into v_state;
  if public.acceptance_stops_payment(v_state,
       (select g.acceptance_required from public.organizations g where g.id = new.org_id)) then
    raise exception 'this invoice cannot be paid: %',
      case v_state when 'rejected' then 'the contractor rejected its self-billed invoice'
                   else 'the contractor has not accepted its self-billed invoice yet' end
      using errcode = '23514', hint = public.acceptance_hint(v_state);
  end if;
  return new;
end
$$;
revoke all on function payout_attempts_acceptance_guard() from public;

-- A self-billed invoice keeps the days of silence that make it accepted as the organization's setting is when it is
-- issued (a later change of the setting changes no invoice already issued), and states no VAT unless told.
create or replace function documents_self_billed_terms() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if new.kind = 'self_billed_invoice' then
    new.acceptance_days := (select g.acceptance_days from public.organizations g where g.id = new.org_id);
    new.vat_category := coalesce(new.vat_category, '');
    new.vat_bps := coalesce(new.vat_bps, 0);
  end if;
  return new;
end
$$;
revoke all on function documents_self_billed_terms() from public;

do $$
begin
  if to_regclass('public.invoice_acceptances') is not null then
    drop trigger if exists documents_self_billed_terms on public.documents;
    create trigger documents_self_billed_terms before insert on public.documents
      for each row execute function documents_self_billed_terms();
    drop trigger if exists einvoice_profiles_guard on public.einvoice_profiles;
    create trigger einvoice_profiles_guard before insert or update on public.einvoice_profiles
      for each row execute function einvoice_profiles_guard();
    drop trigger if exists self_billing_agreements_guard on public.self_billing_agreements;
    create trigger self_billing_agreements_guard before insert or update on public.self_billing_agreements
      for each row execute function self_billing_agreements_guard();
    drop trigger if exists invoice_acceptances_guard on public.invoice_acceptances;
    create trigger invoice_acceptances_guard before insert on public.invoice_acceptances
      for each row execute function invoice_acceptances_guard();
    drop trigger if exists invoices_acceptance_guard on public.invoices;
    create trigger invoices_acceptance_guard after update on public.invoices
      referencing old table as moved_old new table as moved_new
      for each statement execute function invoices_acceptance_guard();
    drop trigger if exists payout_attempts_acceptance_guard on public.payout_attempts;
    create trigger payout_attempts_acceptance_guard before insert on public.payout_attempts
      for each row execute function payout_attempts_acceptance_guard();
  end if;
end
$$;
