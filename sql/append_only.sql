-- Append-only tables: rows written once and never changed or removed, by anyone (the app role has no
-- UPDATE, DELETE or TRUNCATE privilege on them either: sql/rls_policies.sql).

set local check_function_bodies = off;

create or replace function audit_events_reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception 'audit_events is append-only: % is not allowed', tg_op using errcode = '42501';
end
$$;

create or replace function ledger_entries_reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception 'ledger_entries is append-only: % is not allowed', tg_op using errcode = '42501';
end
$$;

create or replace function documents_reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception 'documents are kept as issued: % is not allowed', tg_op using errcode = '42501';
end
$$;

do $$
begin
  if to_regclass('public.audit_events') is not null then
    drop trigger if exists audit_events_append_only on public.audit_events;
    create trigger audit_events_append_only before update or delete on public.audit_events
      for each row execute function audit_events_reject_change();
    drop trigger if exists audit_events_no_truncate on public.audit_events;
    create trigger audit_events_no_truncate before truncate on public.audit_events
      for each statement execute function audit_events_reject_change();
  end if;
  if to_regclass('public.invoices') is not null then
    drop trigger if exists ledger_entries_append_only on public.ledger_entries;
    create trigger ledger_entries_append_only before update or delete on public.ledger_entries
      for each row execute function ledger_entries_reject_change();
  end if;
  if to_regclass('public.documents') is not null then
    drop trigger if exists documents_append_only on public.documents;
    create trigger documents_append_only before update or delete on public.documents
      for each row execute function documents_reject_change();
    drop trigger if exists documents_no_truncate on public.documents;
    create trigger documents_no_truncate before truncate on public.documents
      for each statement execute function documents_reject_change();
  end if;
end
$$;
