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
