-- Payment rails (issue 17; DESIGN.md section 7): the Stripe Connect payout rail's tables, their policies and
-- grants, and the one door through which a webhook event gets in. Its policies are here, beside the rail's
-- function, rather than in sql/rls_policies.sql (which keeps every other table's and stays under 600 lines:
-- tests/integration/test_sql_layout.py); they use the same tools (pg_temp.policy() and the grant helpers), which
-- rls_policies.sql defines for the whole run of these files (one connection: backoffice.schema).

set local check_function_bodies = off;

-- payout_accounts (revision 0022): a contractor's account on a payment rail. Staff see every one, a contractor's
-- user its own. Connected by an admin or by the contractor's own user, in their own name; what the rail says of
-- it (readiness) is updated by the page the rail returns to and by the worker applying the rail's events (rail_events,
-- below). Never deleted: a rail account is part of the payments' record.
select pg_temp.contractor_scoped('payout_accounts');
select pg_temp.policy('payout_accounts', 'connected_by_self', $p$as restrictive for insert with check (
  connected_by = (select app_user_id())
  and ((select app_role()) = 'admin'
       or ((select app_role()) = 'contractor' and contractor_id = (select app_contractor_id()))))$p$);
select pg_temp.grant_to_app('payout_accounts', 'select, insert');
select pg_temp.grant_update_to_app('payout_accounts', '{transfers_active, payouts_enabled, details_submitted, currently_due, updated_at}');

-- rail_events (revision 0023): a payment rail's webhook events, one organization's each. Only
-- rail_event_receive() (below, the owner's) writes them; the worker reads and marks them applied; the
-- web role has no privilege at all.
select pg_temp.policy('rail_events', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
select pg_temp.grant_to_worker('rail_events', 'select');
select pg_temp.grant_to_worker('rail_events', 'update (applied_at, outcome)');
-- The worker applies an account's events (account.updated): what the rail says of it now.
select pg_temp.grant_to_worker('payout_accounts', 'select');
select pg_temp.grant_to_worker('payout_accounts', 'update (transfers_active, payouts_enabled, details_submitted, currently_due, updated_at)');

-- A payment rail's webhook event (issue 17, revision 0023), its signature already verified by the web
-- (web/webhooks.py): stored once per organization whose payout account it concerns, and applied by the worker
-- (apply_rail_event) under that organization's policies, queued in the same transaction. The web role's only
-- way to rail_events, which it cannot read or write; as the owner, because a webhook comes with no organization
-- and the account's is what says whose it is. 'unknown': no payout account here has that id (nothing kept);
-- 'repeat': received before (Stripe sends an event again until it is answered); 'stored'.
create or replace function rail_event_receive(p_rail text, p_event_id text, p_type text, p_account text,
                                              p_payload jsonb)
returns text
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid;
  v_id uuid;
  v_outcome text := 'unknown';
begin
  for v_org in select a.org_id from public.payout_accounts a
                where a.rail = p_rail and a.external_id = p_account order by a.org_id loop
    insert into public.rail_events (org_id, rail, event_id, type, account, payload)
    values (v_org, p_rail, p_event_id, p_type, p_account, p_payload)
    on conflict (org_id, rail, event_id) do nothing
    returning id into v_id;
    if v_id is null then
      v_outcome := case when v_outcome = 'stored' then 'stored' else 'repeat' end;
      continue;
    end if;
    perform procrastinate.procrastinate_defer_jobs_v1(array[
      row('default', 'apply_rail_event', 0, null, null,
          jsonb_build_object('org_id', v_org, 'rail_event_id', v_id), null)::procrastinate.procrastinate_job_to_defer_v1]);
    v_outcome := 'stored';
  end loop;
  return v_outcome;
end
$$;
revoke all on function rail_event_receive(text, text, text, text, jsonb) from public;
do $$
begin
  if to_regclass('public.rail_events') is not null then
    execute format('grant execute on function public.rail_event_receive(text, text, text, text, jsonb) to %I',
                   current_setting('backoffice.app_role'));
  end if;
end
$$;

-- payout_attempts (revision 0024): each call to a payment rail for an invoice; its id is the transfer's
-- idempotency key. Staff see every one, a contractor's user its own contractor's. Finance and admins ask for
-- them in their own name (the web), or the worker does in the name of whoever turned automatic payment on; only
-- the worker (no person: app_membership()) closes one, with what the rail answered.
select pg_temp.contractor_scoped('payout_attempts');
select pg_temp.policy('payout_attempts', 'writers_insert', $p$as restrictive for insert
  with check ((select app_role()) in ('admin', 'finance'))$p$);
select pg_temp.policy('payout_attempts', 'closed_by_the_worker', $p$as restrictive for update
  using ((select app_role()) = 'admin' and (select app_user_id()) is null)
  with check ((select app_role()) = 'admin' and (select app_user_id()) is null)$p$);
select pg_temp.grant_to_app('payout_attempts', 'select, insert');
select pg_temp.grant_to_worker('payout_attempts', 'select, insert');
select pg_temp.grant_to_worker('payout_attempts', 'update (status, transfer_id, payment_id, failure_code, failure_words, tries, finished_at)');
-- Closing an attempt is the worker's: the payment (or its reversal), the invoice's move, its ledger lines. The
-- guards (sql/money.sql) let the worker record a rail's payments only, and move an invoice only as its attempt says.
-- (From the revision that adds payout_attempts and the payments' reversal columns; earlier ones apply this file too.)
select pg_temp.grant_to_worker(t.name, t.privileges) from (values
    ('payments', 'insert'),
    ('payments', 'update (reversed_at, reversal_reference)'),
    ('invoices', 'update (status, exported_at, paid_at)'),
    ('ledger_entries', 'insert')) t(name, privileges)
 where to_regclass('public.payout_attempts') is not null;
-- The worker writes ledger lines only for a rail's payment it records or reverses in the same transaction.
select pg_temp.policy('ledger_entries', 'worker_only_a_rails', $p$as restrictive for insert with check (
  (select app_user_id()) is not null or (select app_role()) is null
  or exists (select 1 from public.payments p
              where p.org_id = ledger_entries.org_id and p.invoice_id = ledger_entries.invoice_id and p.source = 'stripe'
                and (p.recorded_at = now() or p.reversed_at = now())))$p$)
 where to_regclass('public.payout_attempts') is not null;
-- invoices_move_guard (not SECURITY DEFINER: it runs as the caller) asks which moves exist.
do $$
begin
  if to_regclass('public.payout_attempts') is not null then
    execute format('grant execute on function public.invoice_move_allowed(text, text) to %I',
                   current_setting('backoffice.worker_role'));
  end if;
end
$$;

create or replace function payout_attempts_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_invoice public.invoices;
  v_org public.organizations;
  v_payment public.payments;
begin
  if tg_op = 'INSERT' then
    -- Tenancy first, before anything is read or locked. A person asks in their own name; the worker (no person)
    -- only for automatic payment, in the name of the admin who turned it on (checked below).
    if (v_role is null and not public.session_bypasses_rls())
       or (v_role is not null and (v_role not in ('admin', 'finance') or new.org_id is distinct from public.app_org_id()
                                   or (v_user is not null and (new.requested_by is distinct from v_user or new.automatic))
                                   or (v_user is null and not new.automatic))) then
      raise exception 'a payment is sent by finance or an admin, in their own name' using errcode = '42501';
    end if;
    select * into v_org from public.organizations o where o.id = new.org_id;
    if not v_org.stripe_rail_enabled then
      raise exception 'the Stripe rail is off for this organization' using errcode = '23514';
    end if;
    if new.automatic and not (v_org.auto_pay_enabled and new.requested_by is not distinct from v_org.auto_pay_by
                              and exists (select 1 from public.memberships m join public.users u on u.id = m.user_id
                                           where m.org_id = new.org_id and m.user_id = new.requested_by
                                             and m.role = 'admin' and m.accepted_at is not null and u.is_active)) then
      raise exception 'automatic payment is off, or not in the name of the admin who turned it on' using errcode = '42501';
    end if;
    -- Only the row's own organization and contractor are read or locked.
    select * into v_invoice from public.invoices i
     where i.id = new.invoice_id and i.org_id = new.org_id and i.contractor_id = new.contractor_id for update;
    if not found then
      raise exception 'invoice % not found', new.invoice_id using errcode = '23503';
    end if;
    -- Payable: authorized, in no AP batch, not held, not paid (DESIGN.md section 3); an automatic one is due.
    if v_invoice.status <> 'approved' or v_invoice.batch_id is not null then
      raise exception 'invoice % is %; only an authorized invoice in no AP batch is sent to a payment rail',
        v_invoice.invoice_number, v_invoice.status using errcode = '23514';
    end if;
    if new.automatic and v_invoice.due_date > (now() at time zone 'UTC')::date then
      raise exception 'invoice % is due on %; it is never paid automatically before', v_invoice.invoice_number,
        v_invoice.due_date using errcode = '23514';
    end if;
    if (new.amount_minor, new.currency) is distinct from (v_invoice.net_minor, v_invoice.currency) then
      raise exception 'a payout is the invoice''s net payable (% %)', v_invoice.net_minor, v_invoice.currency
        using errcode = '23514';
    end if;
    if not exists (select 1 from public.payout_accounts a
                    where a.org_id = new.org_id and a.contractor_id = new.contractor_id and a.rail = new.rail
                      and a.external_id = new.destination and a.transfers_active and a.payouts_enabled) then
      raise exception 'the contractor''s payout account is not ready to be paid' using errcode = '23514';
    end if;
    if new.requested_by = any (public.invoice_approvers(new.org_id, new.invoice_id)) and v_org.segregation_of_duties then
      raise exception 'segregation of duties: whoever approved a payment cannot send it' using errcode = '42501';
    end if;
    if new.status <> 'pending' or new.tries <> 0
       or num_nonnulls(new.transfer_id, new.payment_id, new.failure_code, new.failure_words, new.finished_at) > 0 then
      raise exception 'a payout attempt starts pending' using errcode = '23514';
    end if;
    new.requested_at := now();
    return new;
  end if;
  -- Closing one: the worker (or the owner role), with what the rail answered.
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and (v_user is not null or new.org_id is distinct from public.app_org_id())) then
    raise exception 'a payout attempt is closed by the worker that made it' using errcode = '42501';
  end if;
  if (new.org_id, new.id, new.run_id, new.invoice_id, new.contractor_id, new.rail, new.destination, new.amount_minor,
      new.currency, new.automatic, new.requested_by, new.requested_at)
     is distinct from
     (old.org_id, old.id, old.run_id, old.invoice_id, old.contractor_id, old.rail, old.destination, old.amount_minor,
      old.currency, old.automatic, old.requested_by, old.requested_at) then
    raise exception 'a payout attempt''s invoice, amount and destination never change' using errcode = '23514';
  end if;
  case old.status || '>' || new.status
    when 'pending>pending' then
      if new.tries < old.tries or num_nonnulls(new.transfer_id, new.payment_id, new.failure_words) > 0 then
        raise exception 'a payout attempt in flight only counts its tries' using errcode = '23514';
      end if;
      return new;
    when 'pending>succeeded' then
      select * into v_payment from public.payments p where p.org_id = new.org_id and p.id = new.payment_id;
      if v_payment.invoice_id is distinct from new.invoice_id or v_payment.reference is distinct from new.transfer_id
         or v_payment.source is distinct from 'stripe' or v_payment.reversed_at is not null
         or v_payment.amount_minor is distinct from new.amount_minor then
        raise exception 'a payout attempt succeeds with its invoice''s payment of its transfer' using errcode = '23514';
      end if;
    when 'pending>refused' then
      if new.transfer_id is not null or new.payment_id is not null then
        raise exception 'a refused payout attempt made no transfer' using errcode = '23514';
      end if;
    when 'succeeded>reversed' then
      if (new.transfer_id, new.payment_id, new.finished_at) is distinct from (old.transfer_id, old.payment_id, old.finished_at)
         or not exists (select 1 from public.payments p
                         where p.org_id = new.org_id and p.id = new.payment_id and p.reversed_at is not null) then
        raise exception 'a payout attempt is reversed with its payment' using errcode = '23514';
      end if;
      return new;
    else
      raise exception 'a payout attempt cannot go from % to %', old.status, new.status using errcode = '23514';
  end case;
  new.finished_at := now();
  return new;
end
$$;
revoke all on function payout_attempts_guard() from public;

-- At commit: a new attempt's invoice is handed to the rail (exported, in no batch), as services/stripe_payouts.send
-- leaves it. Otherwise an attempt could wait in flight for an invoice paid or exported meanwhile, and pay it twice.
create or replace function payout_attempts_handed_over() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if not exists (select 1 from public.invoices i
                  where i.org_id = new.org_id and i.id = new.invoice_id
                    and (i.status, i.batch_id) is not distinct from ('exported', null)) then
    raise exception 'a payout attempt hands its invoice to the rail in the same transaction' using errcode = '23514';
  end if;
  return null;
end
$$;
revoke all on function payout_attempts_handed_over() from public;

do $$
begin
  if to_regclass('public.payout_attempts') is not null then
    drop trigger if exists payout_attempts_guard on public.payout_attempts;
    create trigger payout_attempts_guard before insert or update on public.payout_attempts
      for each row execute function payout_attempts_guard();
    drop trigger if exists payout_attempts_handed_over on public.payout_attempts;
    create constraint trigger payout_attempts_handed_over after insert on public.payout_attempts
      deferrable initially deferred for each row execute function payout_attempts_handed_over();
  end if;
end
$$;

-- Automatic payment goes out in the name of the admin who turned it on (organizations.auto_pay_by): only that
-- admin, in their own name, sets it; nobody names another person for it.
create or replace function organizations_auto_pay_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  -- Turning it on, or naming someone for it: only in one's own name.
  if new.auto_pay_enabled
     and (not old.auto_pay_enabled or new.auto_pay_by is distinct from old.auto_pay_by)
     and not (public.session_bypasses_rls() and public.app_role() is null)
     and new.auto_pay_by is distinct from public.app_user_id() then
    raise exception 'automatic payment is turned on by an admin in their own name' using errcode = '42501';
  end if;
  return new;
end
$$;
revoke all on function organizations_auto_pay_guard() from public;
do $$
begin
  drop trigger if exists organizations_auto_pay_guard on public.organizations;
  if exists (select 1 from pg_attribute where attrelid = 'public.organizations'::regclass and attname = 'auto_pay_by') then
    create trigger organizations_auto_pay_guard before update of auto_pay_enabled, auto_pay_by on public.organizations
      for each row execute function organizations_auto_pay_guard();
  end if;
end
$$;

-- rail_reconciliations and their findings (revision 0026): the worker's daily comparison of the rail's transfers
-- with the payments recorded here, and what it found. Finance and admins read them (the reconciliation page);
-- a contractor and a project owner see nothing. Only the worker writes them (no person: app_user_id() is null),
-- once; nobody changes or removes a run, so the web role holds SELECT alone.
select pg_temp.policy(t, 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$),
       pg_temp.policy(t, 'finance_only', $p$as restrictive
  using ((select app_role()) in ('admin', 'finance')) with check ((select app_role()) in ('admin', 'finance'))$p$),
       pg_temp.policy(t, 'written_by_the_worker', $p$as restrictive for insert
  with check ((select app_role()) = 'admin' and (select app_user_id()) is null)$p$),
       pg_temp.grant_to_app(t, 'select'),
       pg_temp.grant_to_worker(t, 'select, insert')
  from unnest(array['rail_reconciliations', 'rail_reconciliation_findings']) t;
