-- Tax forms and the 1099-NEC year end (issue 18, items 5 and 6): the tables' policies and grants, the rule of a
-- complete tax form (the SQL twin of domain.tax.tax_form_problem), the one door through which any member learns
-- whether a contractor's form is complete, and the guards that refuse to export or pay a contractor without one
-- while its organization requires it. Here rather than in sql/rls_policies.sql (which stays under 600 lines), with
-- its tools (pg_temp.policy() and the grant helpers); before sql/new_ids.sql, which reads the grants.
--
--   tax_profiles        a contractor's W-9 or W-8: its own user writes it; finance and admins read every one, the
--                       contractor's users their own; a project owner none (only whether it is complete, below)
--   tax_tins            each TIN entered, encrypted by the server: written by the contractor's user, read by
--                       finance and admins alone (the year-end export); never changed (sql/append_only.sql)
--   tax_year_filings    each year's 1099-NEC export and its lock: finance and admins, in their own name

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- The rule (twin of domain.tax.tax_form_problem and blocked_words; tests/integration/test_tax_rls.py holds them
-- equal over every combination). Pure: IMMUTABLE, no table read.
-- ---------------------------------------------------------------------------------------------

create or replace function tax_form_problem(p_kind text, p_name text, p_classification text, p_has_tin boolean,
                                            p_address_line1 text, p_city text, p_region text, p_postal_code text,
                                            p_country text) returns text
language sql immutable parallel safe as $$
  select case
    when p_kind is null then 'No W-9 on file'
    when p_kind = 'w9' then case
      when coalesce(btrim(p_name), '') = '' then 'W-9 is missing the name on the tax return'
      when coalesce(btrim(p_classification), '') = '' then 'W-9 is missing the federal tax classification'
      when not coalesce(p_has_tin, false) then 'W-9 is missing the TIN'
      when coalesce(btrim(p_address_line1), '') = '' or coalesce(btrim(p_city), '') = ''
           or coalesce(btrim(p_region), '') = '' or coalesce(btrim(p_postal_code), '') = ''
        then 'W-9 is missing the address'
      end
    else case
      when coalesce(btrim(p_name), '') = '' then v.label || ' is missing the name'
      when coalesce(btrim(p_country), '') = '' then v.label || ' is missing the country'
      when upper(btrim(p_country)) = 'US' then v.label || ' names the United States: a US person files a W-9'
      end
  end
  from (select case p_kind when 'w8ben' then 'W-8BEN' when 'w8ben_e' then 'W-8BEN-E' end as label) v
$$;

create or replace function tax_blocked_words(p_problem text) returns text
language sql immutable strict parallel safe as $$
  select case when p_problem = 'No W-9 on file' then 'Tax form missing: no W-9 on file'
              else 'Tax form incomplete: ' || p_problem end
$$;
revoke all on function tax_form_problem(text, text, text, boolean, text, text, text, text, text) from public;
revoke all on function tax_blocked_words(text) from public;

-- ---------------------------------------------------------------------------------------------
-- Policies and grants.
-- ---------------------------------------------------------------------------------------------

-- tax_profiles: read by finance and admins (every one) and by the contractor's users (their own); a project owner
-- reads none. Written (insert, and update when the form is filled in again) by the contractor's own user, in their
-- own name (certified_by): the person certifying a W-9 is the one who signs it.
select pg_temp.policy('tax_profiles', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('tax_profiles', 'readers', $p$as restrictive for select using (
  case (select app_role())
    when 'admin' then true
    when 'finance' then true
    when 'contractor' then contractor_id = (select app_contractor_id())
    else false
  end)$p$);
select pg_temp.policy('tax_profiles', 'written_by_its_contractor', $p$as restrictive for insert with check (
  (select app_role()) = 'contractor' and contractor_id = (select app_contractor_id())
  and certified_by = (select app_user_id()))$p$);
select pg_temp.policy('tax_profiles', 'updated_by_its_contractor', $p$as restrictive for update
  using ((select app_role()) = 'contractor' and contractor_id = (select app_contractor_id()))
  with check ((select app_role()) = 'contractor' and contractor_id = (select app_contractor_id())
              and certified_by = (select app_user_id()))$p$);
select pg_temp.policy('tax_profiles', 'never_deleted', $p$as restrictive for delete using (false)$p$);
select pg_temp.grant_to_app('tax_profiles', 'select, insert');
-- tin_type and tin_last4 are the guard's to copy from the TIN row; certified_at and updated_at are its now().
select pg_temp.grant_update_to_app('tax_profiles', '{kind, name, business_name, classification, tin_id, address_line1,
  address_line2, city, region, postal_code, country, certified_by}');

-- tax_tins: only finance and admins read one (the year-end export decrypts them); the contractor's own user writes
-- one, in its own name, and never reads it back (the page shows the profile's last four). Nobody changes one.
select pg_temp.policy('tax_tins', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('tax_tins', 'finance_reads', $p$as restrictive for select using ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('tax_tins', 'entered_by_its_contractor', $p$as restrictive for insert with check (
  (select app_role()) = 'contractor' and contractor_id = (select app_contractor_id())
  and entered_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('tax_tins', 'select, insert');

-- tax_year_filings: finance and admins, in every direction; exported and reopened in their own name.
select pg_temp.policy('tax_year_filings', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.policy('tax_year_filings', 'finance_only', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('tax_year_filings', 'exported_by_self', $p$as restrictive for insert
  with check (exported_by = (select app_user_id()))$p$);
select pg_temp.policy('tax_year_filings', 'reopened_by_self', $p$as restrictive for update
  using (true) with check (reopened_by = (select app_user_id()))$p$);
select pg_temp.grant_to_app('tax_year_filings', 'select, insert, update (reopened_by, reopened_at, reopen_reason)');

-- The admin's setting (services/organizations.update_settings), beside the settings page's other columns.
do $$
begin
  if exists (select 1 from pg_attribute where attrelid = 'public.organizations'::regclass and attname = 'tax_form_required') then
    perform pg_temp.grant_update_to_app('organizations', '{tax_form_required}');
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Whether contractors' tax forms are complete, for any member who sees them: staff (a project owner included, who
-- reads no tax profile) learn each one's problem (NULL: complete), a contractor's user only its own contractor's.
-- Nothing else of the form, and only the current organization's contractors. p_contractor_ids NULL: every one.
-- ---------------------------------------------------------------------------------------------
create or replace function tax_form_problems(p_contractor_ids uuid[])
returns table (contractor_id uuid, required boolean, problem text)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select c.id, o.tax_form_required,
         public.tax_form_problem(p.kind, p.name, p.classification, p.tin_id is not null, p.address_line1, p.city,
                                 p.region, p.postal_code, p.country)
    from public.contractors c
    join public.organizations o on o.id = c.org_id
    left join public.tax_profiles p on p.org_id = c.org_id and p.contractor_id = c.id
   where c.org_id = (select public.app_org_id())
     and (p_contractor_ids is null or c.id = any (p_contractor_ids))
     and case (select public.app_role())
           when 'contractor' then c.id = (select public.app_contractor_id())
           else (select public.app_role()) is not null
         end
$$;
do $$
begin
  if to_regclass('public.tax_profiles') is not null then
    perform pg_temp.grant_execute('tax_form_problems(uuid[])', true);
  else
    revoke all on function tax_form_problems(uuid[]) from public;
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Guards.
-- ---------------------------------------------------------------------------------------------

-- A profile's TIN type and last four are its TIN row's, of the same contractor; when it was certified is now.
create or replace function tax_profiles_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_tin public.tax_tins;
begin
  -- Tenancy first: a row of another organization (or of another contractor) is the policies' to refuse, and
  -- nothing it names is read.
  if not public.session_bypasses_rls()
     and (new.org_id is distinct from public.app_org_id()
          or new.contractor_id is distinct from public.app_contractor_id()) then
    return new;
  end if;
  if tg_op = 'UPDATE' and (new.org_id, new.id, new.contractor_id) is distinct from (old.org_id, old.id, old.contractor_id) then
    raise exception 'a tax profile stays its contractor''s' using errcode = '23514';
  end if;
  if new.tin_id is null then
    new.tin_type := null;
    new.tin_last4 := null;
  else
    select * into v_tin from public.tax_tins t
     where t.org_id = new.org_id and t.id = new.tin_id and t.contractor_id = new.contractor_id;
    if not found then
      raise exception 'tax id % not found', new.tin_id using errcode = '23503';
    end if;
    new.tin_type := v_tin.tin_type;
    new.tin_last4 := v_tin.last4;
  end if;
  new.certified_at := now();
  new.updated_at := now();
  if tg_op = 'INSERT' then
    new.created_at := now();
  end if;
  return new;
end
$$;
revoke all on function tax_profiles_guard() from public;

-- A year's filing keeps its file and totals; it is reopened once, now, with a reason.
create or replace function tax_year_filings_guard() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if tg_op = 'INSERT' then
    if (new.size_bytes, new.sha256) is distinct from (length(new.content), encode(sha256(new.content), 'hex')) then
      raise exception 'a filing records its file''s size and sha256' using errcode = '23514';
    end if;
    if num_nonnulls(new.reopened_by, new.reopened_at, new.reopen_reason) > 0 then
      raise exception 'a new filing is locked' using errcode = '23514';
    end if;
    new.exported_at := now();
    return new;
  end if;
  if (new.org_id, new.id, new.year, new.filename, new.content, new.size_bytes, new.sha256, new.threshold_minor,
      new.row_count, new.total_minor, new.totals, new.exported_by, new.exported_at)
     is distinct from
     (old.org_id, old.id, old.year, old.filename, old.content, old.size_bytes, old.sha256, old.threshold_minor,
      old.row_count, old.total_minor, old.totals, old.exported_by, old.exported_at) then
    raise exception 'a year''s filing is kept as exported' using errcode = '23514';
  end if;
  if old.reopened_at is not null then
    raise exception 'tax year % was reopened already', old.year using errcode = '23514';
  end if;
  if new.reopened_at is null or length(btrim(coalesce(new.reopen_reason, ''))) = 0 then
    raise exception 'a tax year is reopened with a reason' using errcode = '23514';
  end if;
  new.reopened_at := now();
  return new;
end
$$;
revoke all on function tax_year_filings_guard() from public;

-- While its organization requires a tax form, a contractor whose form is missing or incomplete is neither exported
-- (approved -> exported: an AP file, or handed to a payment rail) nor paid (approved -> paid). Per statement: an
-- export moves its whole selection in one. Only moves out of approved: what was exported or sent to a rail before
-- is still recorded as paid (a Stripe transfer that happened is always recorded). As the owner (finance may read
-- profiles, the worker may not, and this must hold for both); only the rows the statement moved, which its
-- policies let it see, are read.
create or replace function invoices_tax_form_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_blocked record;
begin
  -- The web's and the worker's statements move their own organization's invoices only (the policies): when it
  -- requires no form, nothing is read of what moved (an export of 100,000 invoices pays one lookup, not a join).
  if not public.session_bypasses_rls()
     and not exists (select 1 from public.organizations g where g.id = public.app_org_id() and g.tax_form_required) then
    return null;
  end if;
  select n.invoice_number, public.tax_blocked_words(
           public.tax_form_problem(p.kind, p.name, p.classification, p.tin_id is not null, p.address_line1, p.city,
                                   p.region, p.postal_code, p.country)) as words
    into v_blocked
    from moved_new n
    join moved_old o on o.org_id = n.org_id and o.id = n.id
    join public.organizations g on g.id = n.org_id and g.tax_form_required
    left join public.tax_profiles p on p.org_id = n.org_id and p.contractor_id = n.contractor_id
   where o.status = 'approved' and n.status in ('exported', 'paid')
     and public.tax_form_problem(p.kind, p.name, p.classification, p.tin_id is not null, p.address_line1, p.city,
                                 p.region, p.postal_code, p.country) is not null
   order by n.number
   limit 1;
  if found then
    raise exception 'invoice % cannot be exported or paid: %', v_blocked.invoice_number, v_blocked.words
      using errcode = '23514', hint = 'The organization requires a complete tax form before payment.';
  end if;
  return null;
end
$$;
revoke all on function invoices_tax_form_guard() from public;

-- The same for a payout attempt (a payment rail's transfer), refused before the rail is called.
create or replace function payout_attempts_tax_form_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_problem text;
begin
  if not public.session_bypasses_rls() and new.org_id is distinct from public.app_org_id() then
    return new;  -- payout_attempts_guard and the policies refuse it; nothing of it is read here
  end if;
  select public.tax_form_problem(p.kind, p.name, p.classification, p.tin_id is not null, p.address_line1, p.city,
                                 p.region, p.postal_code, p.country)
    into v_problem
    from public.organizations g
    left join public.tax_profiles p on p.org_id = g.id and p.contractor_id = new.contractor_id
   where g.id = new.org_id and g.tax_form_required;
  if v_problem is not null then
    raise exception 'this contractor cannot be paid: %', public.tax_blocked_words(v_problem)
      using errcode = '23514', hint = 'The organization requires a complete tax form before payment.';
  end if;
  return new;
end
$$;
revoke all on function payout_attempts_tax_form_guard() from public;

do $$
begin
  if to_regclass('public.tax_profiles') is not null then
    drop trigger if exists tax_profiles_guard on public.tax_profiles;
    create trigger tax_profiles_guard before insert or update on public.tax_profiles
      for each row execute function tax_profiles_guard();
    drop trigger if exists tax_year_filings_guard on public.tax_year_filings;
    create trigger tax_year_filings_guard before insert or update on public.tax_year_filings
      for each row execute function tax_year_filings_guard();
    drop trigger if exists invoices_tax_form_guard on public.invoices;
    create trigger invoices_tax_form_guard after update on public.invoices
      referencing old table as moved_old new table as moved_new
      for each statement execute function invoices_tax_form_guard();
    drop trigger if exists payout_attempts_tax_form_guard on public.payout_attempts;
    create trigger payout_attempts_tax_form_guard before insert on public.payout_attempts
      for each row execute function payout_attempts_tax_form_guard();
  end if;
end
$$;
