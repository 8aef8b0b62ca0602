-- Background jobs (DESIGN.md sections 5 and 6): how a job gets into the queue, and what a periodic job
-- may learn before it acts for an organization. The queue is procrastinate's own schema (migration
-- 0005); its grants (the worker role's, none for the web role) are in sql/rls_policies.sql.

set local check_function_bodies = off;

-- Periodic jobs (the review reminder, the two digests) run once per organization: this is the
-- list of them, and nothing else about them. The worker role's alone: it hands out every
-- organization's id, which no web request has any business knowing.
create or replace function job_org_ids() returns setof uuid
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select o.id from public.organizations o order by o.id
$$;

-- The one way into the queue for the web role (and the worker's own follow-up jobs): a job of a kind
-- the web may ask for, with exactly that kind's arguments (ids and an event name), for the current
-- organization, which app_org_id() grants only on a real membership (or to the worker role). A job
-- with no organization is an account message (a password reset email, in account_messages): only
-- send_email, only for the account the transaction acts as, and only for a message of that account's
-- that exists. The row goes in through procrastinate's own defer function, in the caller's transaction,
-- so the worker takes it unchanged and a rollback enqueues nothing. Refusals are 42501 (insufficient_privilege). A login role
-- that bypasses row-level security (the owner role seeding the demo through the services) is not held
-- to an organization: it can reach every one anyway.
create or replace function enqueue_job(p_task text, p_args jsonb) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_org uuid;
  v_user uuid;
  v_arg record;
begin
  if jsonb_typeof(p_args) is distinct from 'object' then
    raise exception 'a job''s arguments are an object' using errcode = '42501';
  end if;
  if (select array_agg(k order by k) from jsonb_object_keys(p_args) k)
      is distinct from (case p_task
                          when 'notify' then array['entity_id', 'event', 'org_id']
                          when 'send_email' then array['message_id', 'org_id', 'user_id']
                          when 'issue_receipt' then array['invoice_id', 'org_id']
                          when 'issue_remittance_advice' then array['contractor_id', 'org_id', 'run_id']
                          when 'pay_out' then array['attempt_id', 'org_id']
                          when 'pay_on_approval' then array['invoice_id', 'org_id']
                          when 'reconcile_stripe' then array['org_id']
                        end) then
    raise exception 'no job % with these arguments may be enqueued', p_task using errcode = '42501';
  end if;
  for v_arg in select key, value from jsonb_each(p_args) loop
    if jsonb_typeof(v_arg.value) not in ('string', 'null')
       or (jsonb_typeof(v_arg.value) = 'null' and v_arg.key not in ('org_id', 'user_id'))
       or (v_arg.key like '%\_id' and jsonb_typeof(v_arg.value) = 'string'
           and (v_arg.value #>> '{}') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
       or (v_arg.key = 'event' and (v_arg.value #>> '{}') !~ '^[a-z_.]{3,60}$') then
      raise exception 'job argument % is not an id or an event name', v_arg.key using errcode = '42501';
    end if;
  end loop;
  v_org := (p_args ->> 'org_id')::uuid;
  v_user := (p_args ->> 'user_id')::uuid;
  if exists (select 1 from pg_catalog.pg_roles r where r.rolname = session_user and (r.rolsuper or r.rolbypassrls)) then
    null;  -- the owner role (demo seeding, set-up commands), which reads and writes every organization anyway
  elsif v_org is not null then
    if v_org is distinct from public.app_org_id() or v_user is not null then
      raise exception 'a job may be enqueued only for the current organization' using errcode = '42501';
    end if;
    -- The payment rail's jobs: only for the roles whose actions queue them (the worker has an admin's reach).
    -- pay_on_approval follows whoever makes a payment due on approval payable: the reviewer (admin or project
    -- owner), or the approver of its approval policy's last step (any staff role: finance too, issue 18).
    -- Under completion billing (sql/completion.sql) the contractor's user makes two payments payable itself: the
    -- advance, accepting the work request, and an invoice for its approved tasks; it queues their pay_on_approval,
    -- for that invoice of its own written in this transaction, and nothing else.
    if (p_task in ('pay_out', 'reconcile_stripe') and public.app_role() not in ('admin', 'finance'))
       or (p_task = 'pay_on_approval' and public.app_role() not in ('admin', 'owner', 'finance')
           and not (public.app_role() = 'contractor'
                    and exists (select 1 from public.invoices i
                                 where i.org_id = v_org and i.id = (p_args ->> 'invoice_id')::uuid
                                   and i.contractor_id = public.app_contractor_id()
                                   and i.kind in ('advance', 'completion') and i.authorized_at = now()))) then
      raise exception 'a % job is queued by the people who pay, not by a %', p_task, public.app_role()
        using errcode = '42501';
    end if;
  elsif p_task <> 'send_email' or v_user is null or v_user is distinct from public.app_user_id()
        or not exists (select 1 from public.account_messages m
                        where m.id = (p_args ->> 'message_id')::uuid and m.recipient_user_id = v_user) then
    raise exception 'a job without an organization is only an account''s own message' using errcode = '42501';
  end if;
  return (procrastinate.procrastinate_defer_jobs_v1(array[
    row('default', p_task, 0, null, null, p_args, null)::procrastinate.procrastinate_job_to_defer_v1]))[1];
end
$$;

-- From the revision that adds the job queue. job_org_ids(): the worker role only (the web role had it
-- before revision 0007); enqueue_job(): both.
do $$
declare
  v_app text := current_setting('backoffice.app_role');
  v_worker text := current_setting('backoffice.worker_role');
begin
  if to_regnamespace('procrastinate') is not null then
    execute format('revoke all on function public.job_org_ids() from public, %I', v_app);
    execute format('grant execute on function public.job_org_ids() to %I', v_worker);
    execute format('revoke all on function public.enqueue_job(text, jsonb) from public');
    execute format('grant execute on function public.enqueue_job(text, jsonb) to %I, %I', v_app, v_worker);
  end if;
end
$$;

-- What GET /healthz reports (backoffice/web/health.py): the schema's revision and how many job workers
-- beat their heartbeat in the last minute (procrastinate beats every few seconds). Nothing of any
-- tenant, so every role of the app may ask, signed in or not.
create or replace function service_health() returns table (revision text, workers_alive integer)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select (select v.version_num::text from public.alembic_version v limit 1),
         (select count(*)::integer from procrastinate.procrastinate_workers w
           where w.last_heartbeat > now() - interval '60 seconds')
$$;
do $$
begin
  if to_regnamespace('procrastinate') is not null and to_regclass('procrastinate.procrastinate_workers') is not null then
    perform pg_temp.grant_execute('service_health()');
  else
    revoke all on function service_health() from public;
  end if;
end
$$;
