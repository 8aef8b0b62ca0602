-- The data room (DESIGN.md section 6; issue 17, item 7): the documents table's policies and grants. Here rather
-- than in sql/rls_policies.sql (which stays under 600 lines: tests/integration/test_sql_layout.py), with the same
-- tools (pg_temp.policy() and the grant helpers), which rls_policies.sql defines for the whole run of these files
-- (one connection: backoffice.schema), after it has revoked every table privilege.
--
-- A document is the organization's finance team's and admins': every self-billed invoice (one per authorized
-- payment: its PDF, its UBL e-invoice, and a UBL credit note if it was voided after issue) and every remittance
-- advice (one per payment run and contractor). Each is its contractor's as well: the contractor's users read
-- (download) their own contractor's documents, and no other; an owner reads none. Only the worker writes one (services/receipts, services/remittance_advice: the issue_receipt
-- and issue_remittance_advice jobs); nobody changes or deletes one (sql/append_only.sql).

set local check_function_bodies = off;

select pg_temp.policy('documents', 'org_scope', $p$using (org_id = (select app_org_id())) with check (org_id = (select app_org_id()))$p$);
-- One restrictive policy per reader, in the CASE shape of contractor_scoped() (sql/rls_policies.sql): the role is
-- known once per statement, and a contractor's rows are one comparison over documents_contractor_remittance_advices.
-- No role (no membership, a missing context): nothing.
select pg_temp.policy('documents', 'readers', $p$as restrictive for select using (
  case (select app_role())
    when 'admin' then true
    when 'finance' then true
    when 'contractor' then contractor_id = (select app_contractor_id())
    else false
  end)$p$);
select pg_temp.writes_only_by('documents', '{admin,finance}');
do $$
begin
  if to_regclass('public.documents') is not null then
    drop policy if exists finance_and_admins on public.documents;  -- before revision 0025: one policy for everything
  end if;
end
$$;
select pg_temp.grant_to_app('documents', 'select');
select pg_temp.grant_to_worker('documents', 'select, insert');
