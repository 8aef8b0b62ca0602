-- The audit trail's hash chain (DESIGN.md section 5). Its policies and grants: sql/rls_policies.sql;
-- UPDATE, DELETE and TRUNCATE refused for everyone: sql/append_only.sql.

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Audit trail: append-only and hash-chained per organization.
-- The chain fields are computed here, under a per-org advisory lock, whoever inserts: callers cannot
-- choose seq, prev_hash or hash. `backoffice audit verify` recomputes every hash in Python from the
-- same canonical text, so a row altered behind the app's back is named.
-- ---------------------------------------------------------------------------------------------

create or replace function audit_events_chain() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_prev_seq bigint;
  v_prev_hash text;
begin
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
