-- Append-only tables: rows written once and never changed or removed, by anyone.
--
-- One trigger function, reject_change(), refuses UPDATE and DELETE (per row) and TRUNCATE (per statement)
-- on every table listed below, for the owner role as for the app role (which, besides, holds no UPDATE,
-- DELETE or TRUNCATE privilege on them: sql/rls_policies.sql). A table is listed when something else
-- vouches for its rows, so a row changed behind the app's back would break a promise made elsewhere:
--   audit_events      hash-chained per organization (sql/audit.sql); `backoffice audit verify` recomputes it
--   ledger_entries    every transaction sums to zero at commit (sql/money.sql)
--   documents         self-billed invoices (PDF, UBL, credit notes) and remittance advices as issued; their sha256 is in the audit trail
--   evidence_files    the files a decision was based on; each review records their sha256s
--   evidence_chunks   those files' bytes
--   ap_export_chunks  an AP export file's bytes; its batch records their size and sha256
--   tax_tins          the TINs contractors entered (encrypted); a tax profile and a 1099 filing name them
--   invoice_acceptances  a contractor's answers to self-billed invoices; payment and silence are judged by them
-- Insert-only for the app role (its grants) but not listed, so the owner role may still correct them:
-- submissions and reviews (test fixtures date them back), payments, change_orders, change_order_lines.
-- Listing one more is one line below; tests/integration/test_sql_layout.py names the list too.
--
-- To rewrite a row on purpose (a test of `audit verify`), the owner disables the table's trigger by name
-- (<table>_append_only, <table>_no_truncate) inside one transaction and enables it again before commit.

set local check_function_bodies = off;

-- The message names the table (or says it in the table's own words, the trigger's argument) and the
-- operation refused.
create or replace function reject_change() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception '%: % is not allowed', coalesce(tg_argv[0], tg_table_name || ' is append-only'), tg_op
    using errcode = '42501';
end
$$;

do $$
declare
  v_table record;
begin
  for v_table in select * from (values
      ('audit_events', null),
      ('ledger_entries', null),
      ('documents', 'documents are kept as issued (append-only)'),
      ('evidence_files', null),
      ('evidence_chunks', null),
      ('ap_export_chunks', null),
      ('tax_tins', null),
      ('invoice_acceptances', 'a contractor''s answer to a self-billed invoice is kept as given (append-only)')) t(name, words)
  loop
    continue when to_regclass('public.' || v_table.name) is null;  -- a table of a later revision
    execute format('drop trigger if exists %I on public.%I', v_table.name || '_append_only', v_table.name);
    execute format('create trigger %I before update or delete on public.%I for each row execute function reject_change(%s)',
                   v_table.name || '_append_only', v_table.name, coalesce(quote_literal(v_table.words), ''));
    execute format('drop trigger if exists %I on public.%I', v_table.name || '_no_truncate', v_table.name);
    execute format('create trigger %I before truncate on public.%I for each statement execute function reject_change(%s)',
                   v_table.name || '_no_truncate', v_table.name, coalesce(quote_literal(v_table.words), ''));
  end loop;
end
$$;
