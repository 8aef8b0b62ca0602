-- A new row's id is new in its organization (DESIGN.md section 5: no lock of another tenant's row is ever taken).
--
-- INSERT ... ON CONFLICT DO UPDATE naming an existing row's key locks that row, waiting for whoever holds it,
-- before the UPDATE policy is checked; a plain INSERT repeating a key waits for an open transaction that
-- changed that row before its primary key refuses it. So every table the app role may both insert into and
-- update gets a BEFORE INSERT trigger that reads the key first (a plain read: it neither locks nor waits) and
-- refuses a taken one as the primary key would, in the same words. Nothing legitimate inserts an id that
-- exists: the app's ids are the database's gen_random_uuid().
--
-- Since revision 0015 the primary key is (org_id, id) (tests/integration/test_tenant_keys.py): an id is
-- unique within its organization, and another organization's row with the same id is neither a conflict
-- nor reachable by this insert's key, so only the row's own organization is read (over the key's index). The
-- trigger still keeps a writer off the rows of its own organization that its policies hide (another
-- contractor's, say) or let it read but not update.
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
  execute format('select exists (select 1 from %I.%I t where t.org_id = $1 and t.id = $2)', tg_table_schema,
                 tg_table_name)
    into v_taken using new.org_id, new.id;
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
