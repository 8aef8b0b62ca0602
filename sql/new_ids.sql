-- A new row's id is new (DESIGN.md section 5: no lock of another tenant's row is ever taken).
--
-- INSERT ... ON CONFLICT (id) DO UPDATE naming another organization's row by its id locks that row, waiting
-- for whoever holds it, before the UPDATE policy refuses it; a plain INSERT repeating an id waits for an open
-- transaction that changed that row before its primary key refuses it. So every table the app role may both
-- insert into and update gets a BEFORE INSERT trigger that reads the id first (a plain read: it neither locks
-- nor waits) and refuses a taken one as the primary key would, in the same words. Nothing legitimate inserts
-- an id that exists: the app's ids are the database's gen_random_uuid().
--
-- The tables (those with an id and an org_id) follow the grants of sql/rls_policies.sql, applied before: a
-- table that gains INSERT and UPDATE gets the trigger, one that loses either loses it.

set local check_function_bodies = off;

create or replace function refuse_taken_id() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_taken boolean;
begin
  -- A row of another organization than the context's (or of no person's context): its policy's WITH CHECK
  -- refuses it after the BEFORE triggers and before any conflict is looked for, as it always did; saying
  -- "taken" here first would tell such a caller which ids exist.
  if new.org_id is distinct from public.app_org_id() then
    return new;
  end if;
  execute format('select exists (select 1 from %I.%I t where t.id = $1)', tg_table_schema, tg_table_name)
    into v_taken using new.id;
  if v_taken then
    raise exception 'duplicate key value violates unique constraint "%"', tg_table_name || '_pkey'
      using errcode = '23505', constraint = tg_table_name || '_pkey';
  end if;
  return new;
end
$$;
revoke all on function refuse_taken_id() from public;

do $$
declare
  v_table record;
begin
  for v_table in
    select c.relname as name,
           has_any_column_privilege(current_setting('backoffice.app_role'), c.oid, 'insert')
           and has_any_column_privilege(current_setting('backoffice.app_role'), c.oid, 'update') as upserted
      from pg_catalog.pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
       and (select count(*) from pg_catalog.pg_attribute a
             where a.attrelid = c.oid and a.attname in ('id', 'org_id') and not a.attisdropped) = 2
  loop
    execute format('drop trigger if exists %I on public.%I', v_table.name || '_new_id', v_table.name);
    if v_table.upserted then
      execute format('create trigger %I before insert on public.%I for each row execute function refuse_taken_id()',
                     v_table.name || '_new_id', v_table.name);
    end if;
  end loop;
end
$$;
