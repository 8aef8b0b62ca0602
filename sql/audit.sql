-- The audit trail's hash chain (DESIGN.md section 5). Its policies and grants: sql/rls_policies.sql;
-- UPDATE, DELETE and TRUNCATE refused for everyone: sql/append_only.sql.

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Audit trail: append-only and hash-chained per organization.
-- The chain fields are computed here, under a per-org advisory lock, whoever inserts: callers cannot
-- choose seq, prev_hash or hash. `backoffice audit verify` recomputes every hash in Python from the
-- same canonical text, so a row altered behind the app's back is named.
--
-- Who did it is the transaction's identity, never the caller's word (DESIGN.md section 5): whatever the
-- insert says, actor_user_id and actor_label are set here, before the hash covers them. A person is the
-- user app.user_id names, with their email (read as definer: the app role may not read every column of
-- users). Without a person the label says what acted: 'system' when the session's login role can bypass
-- row-level security (session_bypasses_rls(), sql/rls_policies.sql: the owner role of CLI commands,
-- migrations and bootstrap; a superuser), and 'background job' otherwise. It asks session_user, not
-- current_user: inside this SECURITY DEFINER function current_user is the owner, and the app and worker
-- roles cannot change their session_user (they are members of no other role). Only a job gets past the
-- insert policy of audit_events without a person: as the worker role (app.user_id unset); the old worker
-- identity app.user_id = app.org_id named no user either. The restrictive policy actor_is_self
-- (sql/rls_policies.sql) runs after this trigger, so it checks the values set here: redundant with it,
-- never in its way.
-- ---------------------------------------------------------------------------------------------

create or replace function audit_events_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_prev_seq bigint;
  v_prev_hash text;
  v_user_id uuid;
  v_email text;
begin
  select u.id, u.email into v_user_id, v_email from public.users u where u.id = public.app_user_id();
  new.actor_user_id := v_user_id;
  new.actor_label := coalesce(v_email, case when public.session_bypasses_rls() then 'system' else 'background job' end);
  perform pg_advisory_xact_lock(hashtextextended('audit_events:' || new.org_id::text, 0));
  select e.seq, e.hash into v_prev_seq, v_prev_hash
    from public.audit_events e where e.org_id = new.org_id order by e.seq desc limit 1;
  new.seq := coalesce(v_prev_seq, 0) + 1;
  new.prev_hash := coalesce(v_prev_hash, repeat('0', 64));
  new.occurred_at := date_trunc('microseconds', clock_timestamp());
  new.hash := encode(sha256(convert_to(
      concat_ws('|', new.org_id::text, new.seq::text,
                to_char(new.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                coalesce(new.actor_user_id::text, ''), new.actor_label, new.action, new.entity_type,
                coalesce(new.entity_id, ''), new.data::text, new.prev_hash),
      'UTF8')), 'hex');
  return new;
end
$$;

do $$
begin
  if to_regclass('public.audit_events') is not null then
    drop trigger if exists audit_events_chain on public.audit_events;
    create trigger audit_events_chain before insert on public.audit_events
      for each row execute function audit_events_chain();
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Chain heads that leave the database. Every document carries the organization's chain head when it
-- was made (seq and hash, in its text and in these columns), so `backoffice audit verify
-- --from-documents` notices a trail cut short behind the newest head a document saw. A head that is not
-- in the trail when the document is stored is refused: a document only ever vouches for a real event.
-- ---------------------------------------------------------------------------------------------

create or replace function documents_audit_head() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if not exists (select 1 from public.audit_events e
                  where e.org_id = new.org_id and e.seq = new.audit_head_seq and e.hash = new.audit_head_hash) then
    raise exception 'the audit trail head #% % is not in the organization''s trail', new.audit_head_seq, new.audit_head_hash
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;

-- A trigger function: nobody calls it (PostgreSQL refuses to other than as a trigger), so nobody gets EXECUTE.
revoke all on function documents_audit_head() from public;

do $$
begin
  if exists (select 1 from pg_attribute where attrelid = to_regclass('public.documents') and attname = 'audit_head_seq') then
    drop trigger if exists documents_audit_head on public.documents;
    create trigger documents_audit_head before insert on public.documents
      for each row when (new.audit_head_seq is not null) execute function documents_audit_head();
  end if;
end
$$;
