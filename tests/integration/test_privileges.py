"""Every privilege the web role and the worker role hold, read from the catalogs and held against an
allow-list with a reason for each (DESIGN.md section 5, issue 16): the web role must be safe against arbitrary
SQL on its own connection, and the worker role acts with an admin's reach in whichever organization a job
names, so what each may touch at all is a decision written down here, not whatever the grants happen to
add up to. A privilege not on the list fails the test by name (a new table granted in full, a column grant
widened, a function left executable by PUBLIC, a schema opened up), and so does one on the list that is gone.

What is listed, in every schema but PostgreSQL's own (pg_catalog, information_schema, pg_toast):
- the role's attributes and the roles it is a member of (a member of pg_read_all_data reads every table);
- database privileges (CONNECT; TEMPORARY would let it create functions of its own);
- schema USAGE and CREATE;
- table privileges (SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER; MAINTAIN from PostgreSQL
  17), and where the table privilege is not held, the columns a column privilege covers;
- sequence privileges;
- EXECUTE on functions and procedures, PUBLIC's default included (a function created without a REVOKE is
  executable by everyone). Trigger functions are left out: PostgreSQL runs them only as triggers
  (``test_a_trigger_function_cannot_be_called_directly`` shows it), so EXECUTE on one gives nothing;
- default privileges (ALTER DEFAULT PRIVILEGES) naming the role, which would grant it every future object.

Each entry's reason says which page or job needs it; the grants themselves are in sql/rls_policies.sql
(tables, beside each table's policies: grant_to_app for the web role, grant_to_worker for the worker role)
and in the file of each function's area. What the narrowing of revision 0010 took away is shown refused, as
raw SQL, in tests/integration/test_least_privilege.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

# Schemas PostgreSQL owns; every role reads the catalogs, and nothing of the application lives there.
SYSTEM_SCHEMAS = "n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp_)'"

PRIVILEGES_SQL = f"""
with role as (select cast(:role as name) as name),
nsp as (select n.oid, n.nspname from pg_namespace n where {SYSTEM_SCHEMAS}),
rel as (
  select c.oid, c.relkind, nsp.nspname, c.relname
    from pg_class c join nsp on nsp.oid = c.relnamespace
   where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
)
select format('role attribute %s', a) from pg_roles r, role,
  lateral (values ('SUPERUSER', r.rolsuper), ('INHERIT', r.rolinherit), ('CREATEROLE', r.rolcreaterole),
                  ('CREATEDB', r.rolcreatedb), ('LOGIN', r.rolcanlogin), ('REPLICATION', r.rolreplication),
                  ('BYPASSRLS', r.rolbypassrls)) v(a, held)
 where r.rolname = role.name and v.held
union all
select format('member of role %I', g.rolname) from pg_roles g, role
 where g.rolname <> role.name and pg_has_role(role.name, g.oid, 'MEMBER')
union all
select format('%s on database', p) from role, unnest(array['CONNECT', 'CREATE', 'TEMPORARY']) p
 where has_database_privilege(role.name, current_database(), p)
union all
select format('%s on schema %I', p, nsp.nspname) from nsp, role, unnest(array['USAGE', 'CREATE']) p
 where has_schema_privilege(role.name, nsp.oid, p)
union all
select format('%s on table %I.%I', p, rel.nspname, rel.relname)
  from rel, role, unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']
                         || case when current_setting('server_version_num')::int >= 170000  -- VACUUM, ANALYZE ...
                                 then array['MAINTAIN'] else '{{}}' end) p
 where rel.relkind <> 'S' and has_table_privilege(role.name, rel.oid, p)
union all
select format('%s on table %I.%I (%s)', p, rel.nspname, rel.relname, string_agg(a.attname, ', ' order by a.attname))
  from rel join pg_attribute a on a.attrelid = rel.oid and a.attnum > 0 and not a.attisdropped,
       role, unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
 where rel.relkind <> 'S' and not has_table_privilege(role.name, rel.oid, p)
   and has_column_privilege(role.name, rel.oid, a.attnum, p)
 group by p, rel.nspname, rel.relname
union all
select format('%s on sequence %I.%I', p, rel.nspname, rel.relname)
  from rel, role, unnest(array['USAGE', 'SELECT', 'UPDATE']) p
 where rel.relkind = 'S' and has_sequence_privilege(role.name, rel.oid, p)
union all
select format('EXECUTE on %s %I.%I(%s)', case f.prokind when 'p' then 'procedure' else 'function' end, nsp.nspname,
              f.proname, pg_get_function_identity_arguments(f.oid))
  from pg_proc f join nsp on nsp.oid = f.pronamespace, role
 where f.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
   and has_function_privilege(role.name, f.oid, 'EXECUTE')
union all
select format('default privileges of %I in %s on %s: %s', pg_get_userbyid(d.defaclrole),
              coalesce(d.defaclnamespace::regnamespace::text, 'every schema'), d.defaclobjtype, x.privilege_type)
  from pg_default_acl d, aclexplode(d.defaclacl) x, role
 where x.grantee = (select oid from pg_roles where rolname = role.name)
"""


def privileges_of(conn, role: str) -> set[str]:
    found = conn.execute(text(PRIVILEGES_SQL), {"role": role}).scalars().all()
    assert len(found) == len(set(found)), "one privilege listed twice: the listing is ambiguous"
    return set(found)


# --- the web role -------------------------------------------------------------------------------------

# Tables: the first gate; the policies of sql/rls_policies.sql narrow each to the organization, the role and
# the contractor, and the guards of sql/<area>.sql to the legal moves. Table-wide UPDATE is never granted:
# the columns are the ones the pages write (issue 16).
WEB_ROLE_TABLES = {
    # the tenant and its people
    "SELECT on table public.organizations": "every page shows the current organization and follows its settings",
    "UPDATE on table public.organizations (acceptance_days, acceptance_required, advances_enabled,"
    " ap_expense_account, ap_export_bom, ap_export_columns, ap_export_date_format, ap_export_preset, auto_pay_by,"
    " auto_pay_enabled,"
    " default_advance_bps, default_currency, default_retainage_bps, evidence_max_file_mb, evidence_max_files,"
    " evidence_max_submission_mb, invoice_prefix, locale, name, partial_policy, payment_terms_days, review_sla_days,"
    " segregation_of_duties, stripe_rail_enabled, tax_form_required)": "the settings and AP export layout pages"
    " (services/organizations), the advance settings among them (revision 0030: whether engagements take an advance,"
    " and the default rate) and the self-billing acceptance settings (revision 0031); never its id",
    "EXECUTE on function public.rail_event_receive(p_rail text, p_event_id text, p_type text, p_account text,"
    " p_payload jsonb)": "POST /webhooks/stripe: a verified event stored once and its job queued (sql/rails.sql)",
    "SELECT on table public.payout_accounts": "a contractor's payout account and its readiness (revision 0022)",
    "INSERT on table public.payout_accounts": "connecting a payout account (services/payout_accounts)",
    "SELECT on table public.payout_attempts": "an invoice's Stripe payments, and why one was refused (revision 0024)",
    # payment controls (issue 18, revision 0027; policies in sql/controls.sql)
    "SELECT on table public.approval_policies": "the approval policies page; the invoice's start under one",
    "INSERT on table public.approval_policies": "an admin adds a policy (services/approvals.create_policy)",
    "UPDATE on table public.approval_policies (archived_at, archived_by)": "an admin switches a policy off, once",
    "SELECT on table public.approval_policy_steps": "a policy's steps, on its page and when an invoice starts under it",
    "INSERT on table public.approval_policy_steps": "a new policy's steps, written with it",
    "SELECT on table public.invoice_approvals": "the approvals queue and an invoice's steps",
    "UPDATE on table public.invoice_approvals (decided_at, decided_by, on_behalf_of, reason, status)": (
        "an approver decides the step that waits (invoice_approvals_guard says whether they may)"
    ),
    "SELECT on table public.approval_delegations": "the approvals page lists stand-ins",
    "INSERT on table public.approval_delegations": "an approver names a stand-in (services/approvals.delegate)",
    "UPDATE on table public.approval_delegations (revoked_at)": "a delegation is ended, once",
    "SELECT on table public.holds": "why an invoice is not payable yet; the holds page",
    "INSERT on table public.holds": "finance holds an invoice or a contractor (services/holds)",
    "UPDATE on table public.holds (release_note, released_at, released_by)": "finance releases a hold, once",
    "EXECUTE on function public.invoice_held(p_org uuid, p_invoice uuid, p_contractor uuid)": (
        "invoices_move_guard runs as the caller and asks it whether a hold stops an export or a payment"
    ),
    "INSERT on table public.payout_attempts": "finance sends invoices to Stripe (services/stripe_payouts.send)",
    "SELECT on table public.rail_reconciliations": (
        "the Stripe reconciliation page: the latest run and its counts (finance and admins, by policy; revision 0026)"
    ),
    "SELECT on table public.rail_reconciliation_findings": (
        "the Stripe reconciliation page lists the latest run's findings (finance and admins, by policy); only the"
        " worker writes them"
    ),
    "UPDATE on table public.payout_accounts (currently_due, details_submitted, payouts_enabled, transfers_active,"
    " updated_at)": "the readiness Stripe reports when the person comes back from its onboarding",
    "SELECT on table public.users (created_at, email, id, is_active, last_login_at, name)": (
        "names and emails of the people one works with (members page, reviewers, approvers); never password_hash"
    ),
    "SELECT on table public.memberships": "the members page, and who runs or decides on an engagement",
    "INSERT on table public.memberships (contractor_id, id, org_id, role, user_id)": (
        "an admin invites someone (services/members); accepted_at is set by accept_invite() alone"
    ),
    "UPDATE on table public.memberships (contractor_id, role)": "an admin changes a member's role (change_role)",
    "DELETE on table public.memberships": "an admin removes a member (services/members.remove_member)",
    "SELECT on table public.contractors": "contractor lists, and every engagement and invoice names its contractor",
    "INSERT on table public.contractors": "an admin adds a contractor (services/contractors.create_contractor)",
    "UPDATE on table public.contractors (ap_vendor_id, email, legal_name, payout_details, updated_at)": (
        "an admin edits a contractor (services/contractors.update_contractor); never its id or organization"
    ),
    "SELECT on table public.invites": "the members page lists pending invitations (admins only, by policy)",
    "INSERT on table public.invites (created_by, email, id, name, org_id, token_hash, user_id)": (
        "an admin invites someone; created_at and expires_at are the database's"
    ),
    "UPDATE on table public.invites (used_at)": "a newer invitation or removing the member retires older links",
    "SELECT on table public.audit_events": "the audit trail page (admins and finance, by policy)",
    "INSERT on table public.audit_events": (
        "every service records what it did in its own transaction (services/audit.record); who did it is the"
        " database's to fill, and nobody changes an event (sql/append_only.sql)"
    ),
    # engagements
    "SELECT on table public.engagements": "the engagement list and pages",
    "INSERT on table public.engagements": "staff create an engagement (services/engagements.create_engagement)",
    "UPDATE on table public.engagements (advance_bps, advance_confirmed_at, advance_confirmed_by, advance_minor,"
    " billing_mode, cancel_reason, cancelled_at, completed_at, contract_value_minor, contractor_id, currency,"
    " decline_reason, owner_user_id, payment_terms_days, responded_at, responded_by, retainage_bps, sent_at, sent_by,"
    " service_fee_bps, sow_reference, status, title, updated_at)": (
        "a draft's terms (update_terms: since revision 0030 its billing mode, contract value and advance too, which"
        " engagements_billing_guard and engagements_guard fix once the work request is sent), the advance confirmed"
        " by whoever sends it, a change order's new contract value, and the moves with their who and when (perform);"
        " never its id, organization or creator"
    ),
    "SELECT on table public.milestones": "engagement and milestone pages, the due page, the review queue",
    "INSERT on table public.milestones": "a draft's schedule editor and import, and a change order's additions",
    "UPDATE on table public.milestones (amount_minor, deliverable, due_date, seq, status, title, updated_at)": (
        "a draft's schedule editor, a change order's lines (milestones_guard wants the line once the work request"
        " is sent), and submitting and deciding move its status; never its ids"
    ),
    "DELETE on table public.milestones": "the schedule editor removes a draft's rows (milestones_guard: drafts only)",
    "SELECT on table public.change_orders": "the engagement page's change order history",
    "INSERT on table public.change_orders (contract_value_after, contract_value_before, contractor_id, created_by,"
    " engagement_id, id, number, org_id, reason)": (
        "issuing a change order, and a split partial approval's (insert only); never created_at, which"
        " milestones_guard reads as 'issued in this transaction' when it is now()"
    ),
    "SELECT on table public.change_order_lines": "each change order's lines, before and after",
    "INSERT on table public.change_order_lines": "written with their change order, never changed",
    # evidence and review: insert only
    "SELECT on table public.submissions": "the milestone page and the review queue",
    "INSERT on table public.submissions": "a contractor submits work (services/submissions.submit_work)",
    "SELECT on table public.evidence_files": "the review page lists the evidence; downloads",
    "INSERT on table public.evidence_files": "uploaded with its submission, in its transaction (by policy)",
    "SELECT on table public.evidence_chunks": "an evidence file's bytes, streamed to a download",
    "INSERT on table public.evidence_chunks": "the uploaded bytes, with their submission (by policy)",
    "SELECT on table public.reviews": "decisions on the milestone page, for staff and the contractor",
    "INSERT on table public.reviews": "the project owner or an admin decides (services/reviews.decide)",
    # money: amounts are written once
    "SELECT on table public.invoices": "invoice pages, the payment queue, the retainage report",
    "INSERT on table public.invoices": "an approval writes its invoice; releasing retainage (services/invoices)",
    "UPDATE on table public.invoices (batch_id, exported_at, paid_at, status)": (
        "exporting, voiding a batch and recording a payment move its status; never an amount or a date of issue"
    ),
    "SELECT on table public.payments": "invoice pages and remittance",
    "INSERT on table public.payments": "finance records a payment, by hand or from an AP batch",
    "SELECT on table public.ap_export_batches": "the AP export batches page",
    "INSERT on table public.ap_export_batches": "finance exports a batch (services/ap_export)",
    "UPDATE on table public.ap_export_batches (invoice_ids, row_count, sha256, size_bytes, status, total_minor,"
    " void_reason, voided_at, voided_by)": "sealing a batch with its file's size, hash, rows and total; voiding it",
    "SELECT on table public.ap_export_chunks": "the stored export file, downloaded as written",
    "INSERT on table public.ap_export_chunks": "the export's bytes, written with their batch (by policy)",
    "SELECT on table public.ledger_entries": "the ledger for finance and admins",
    "INSERT on table public.ledger_entries": "each money event writes its balanced lines in its own transaction",
    # notifications and documents
    "SELECT on table public.email_messages": "the outbox page (admins)",
    "INSERT on table public.email_messages (attempts, dedupe_key, entity_id, entity_type, event, html, id, org_id,"
    " recipient, recipient_user_id, status, subject, text)": (
        "an admin's invitation is written by the request (services/members, notifications.store_message); never"
        " how or when it was delivered (last_error, provider_id, sent_at, created_at, updated_at)"
    ),
    "UPDATE on table public.email_messages (status, updated_at)": (
        "an admin sends a kept or failed message again (services/notifications.requeue)"
    ),
    # revision 0034: each person's preferences, their own row only (sql/preferences.sql)
    "SELECT on table public.user_preferences": "the preferences page and the time zone every page shows times in",
    "INSERT on table public.user_preferences (notify, time_zone, user_id)": "a person's first saved preferences",
    "UPDATE on table public.user_preferences (notify, time_zone, updated_at)": "a person changing their preferences",
    "SELECT on table public.notifications": "each person's notifications",
    "UPDATE on table public.notifications (read_at)": "marking one's notifications read",
    "SELECT on table public.documents": (
        "the data room (finance and admins); a contractor's own remittance advices (sql/data_room.sql)"
    ),
    # derived totals (revision 0014): read by the pages; only their trigger, as the owner, writes them
    "SELECT on table public.invoice_totals": "the payment queue's totals per currency (finance and admins)",
    "SELECT on table public.ap_batch_paid": "the batches list's paid count per batch (finance and admins)",
    "SELECT on table public.retainage_totals": "the retainage report and a contractor's retainage held",
    "SELECT on table public.contractor_retainage_totals": "the retainage report's held per contractor (0020)",
    # tax forms and the 1099-NEC year end (revision 0028; sql/tax.sql)
    "SELECT on table public.tax_profiles": (
        "the contractor's tax form page (its own), the contractor's page and the year end (finance and admins);"
        " a project owner reads none (by policy)"
    ),
    "INSERT on table public.tax_profiles": "a contractor's user fills in its W-9 or W-8 (services/tax_profiles)",
    "UPDATE on table public.tax_profiles (address_line1, address_line2, business_name, certified_by, city,"
    " classification, country, kind, name, postal_code, region, tin_id)": (
        "a contractor's user fills its form in again; never its contractor, nor the TIN's type and last four,"
        " which the guard copies from the TIN row"
    ),
    "SELECT on table public.tax_tins": "the 1099-NEC export decrypts the TINs (finance and admins only, by policy)",
    "INSERT on table public.tax_tins": (
        "a contractor's user enters its TIN, encrypted by the server (services/tax_profiles); never read back"
    ),
    # self-billed e-invoices (revision 0031; sql/self_billing.sql)
    "SELECT on table public.einvoice_profiles": (
        "the e-invoicing details pages and an invoice's e-invoice problems (finance and admins every one; a"
        " contractor's user its own and the organization's; a project owner none, by policy)"
    ),
    "INSERT on table public.einvoice_profiles": "saving e-invoicing details (services/einvoice_profiles)",
    "UPDATE on table public.einvoice_profiles (city, country, endpoint_id, endpoint_scheme, legal_name, postal_code,"
    " street, tax_id, tax_scheme, updated_by, vat_bps, vat_category)": (
        "saving them again; never whose profile it is (updated_at is the guard's clock)"
    ),
    "SELECT on table public.self_billing_agreements": "the contractor's page and the contractor's agreement page",
    "INSERT on table public.self_billing_agreements": "an admin records an agreement (services/self_billing)",
    "UPDATE on table public.self_billing_agreements (confirmed_by)": (
        "the contractor's user confirms it, once (the guard sets confirmed_at and refuses every other change)"
    ),
    "SELECT on table public.invoice_acceptances": "an invoice's page says where the contractor's answer stands",
    "INSERT on table public.invoice_acceptances": "the contractor's user accepts or rejects a self-billed invoice",
    "EXECUTE on function public.acceptance_blocks(p_invoice_ids uuid[])": (
        "which invoices the contractor's answer stops paying (queries/payability), for the payment doors and pages;"
        " the current organization's only, a contractor's user its own"
    ),
    "EXECUTE on function public.acceptance_state(p_issued_at timestamp with time zone, p_last_decision text,"
    " p_days integer, p_now timestamp with time zone, p_voided boolean)": (
        "domain.self_billing's twin, pure: the contractor's home lists what awaits its answer by the database's clock"
    ),
    "SELECT on table public.tax_year_filings": "the 1099 year-end page, its lock and its filed file (finance, admins)",
    "INSERT on table public.tax_year_filings": "exporting a year's 1099-NEC file locks the year (services/year_end)",
    "UPDATE on table public.tax_year_filings (reopen_reason, reopened_at, reopened_by)": (
        "reopening a locked year with a reason; the file and its totals never change (tax_year_filings_guard)"
    ),
    # from project to contract (revision 0029; sql/projects.sql)
    "SELECT on table public.project_categories": "the project form's list and a project's category, for every member",
    "INSERT on table public.project_categories": "an admin adds a category in settings (services/projects)",
    "UPDATE on table public.project_categories (archived_at)": (
        "an admin archives or restores a category; no page renames one"
    ),
    "SELECT on table public.projects": (
        "the projects pages: staff see every one, a contractor those it may propose on or proposed on (by policy)"
    ),
    "INSERT on table public.projects": "an owner or an admin opens a project (projects_guard: open, in their name)",
    "UPDATE on table public.projects (advance_bps, audience, awarded_at, awarded_by, billing_mode, budget_minor,"
    " cancel_reason, cancelled_at, cancelled_by, category_id, currency, deadline, description, owner_user_id, status,"
    " title, updated_at)": (
        "editing an open project (a completion project's advance with its billing mode, revision 0030), cancelling it"
        " and the award (services/projects, awards); never its id, organization or creator"
    ),
    "SELECT on table public.project_invitations": "who is invited (staff); a contractor its own invitations",
    "INSERT on table public.project_invitations": "opening or editing a project invites contractors",
    "DELETE on table public.project_invitations": (
        "editing a project takes back an invitation nobody used (project_invitations_guard keeps a proposer's)"
    ),
    "SELECT on table public.proposals": "comparing proposals (staff); a contractor's own proposal, never another's",
    "INSERT on table public.proposals": "a contractor's user submits its one proposal (proposals_guard)",
    "UPDATE on table public.proposals (decided_at, decided_by, note, price_minor, status, timeline, updated_at,"
    " withdrawn_at)": (
        "the contractor edits or withdraws its proposal, the award accepts one and declines the rest (proposals_guard"
        " keeps each to its own columns); never its project, contractor or author"
    ),
    "SELECT on table public.proposal_milestones": "the comparison and the award read a proposal's milestones",
    "INSERT on table public.proposal_milestones": "a contractor's user proposes its milestones",
    "DELETE on table public.proposal_milestones": "editing a proposal replaces its milestones as a whole",
    "SELECT on table public.proposal_files": "a proposal's attachments, downloaded by staff and by their contractor",
    "INSERT on table public.proposal_files": "a contractor's user attaches files to its proposal",
    "DELETE on table public.proposal_files": "a contractor's user takes a file off its proposal while it may change",
    # completion billing (revision 0030; sql/completion.sql): the tasks a task or final invoice bills
    "SELECT on table public.invoice_tasks": (
        "the completion schedule (which tasks are invoiced, by which invoice) for staff and the contractor (its own,"
        " by policy), and an invoice's tasks"
    ),
    "INSERT on table public.invoice_tasks": (
        "written with their invoice: the contractor's user's task invoice (services/completion.raise_invoice), the"
        " deciding owner's or admin's final payment; never updated or deleted (voided by the owner's trigger)"
    ),
}

# Functions: the SECURITY DEFINER ones are the web role's only way to what its grants keep from it; the
# others are pure functions of their arguments.
WEB_ROLE_FUNCTIONS = {
    # the context helpers every policy calls (sql/rls_policies.sql)
    "EXECUTE on function public.app_user_id()": "policies ask who the user is",
    "EXECUTE on function public.app_membership()": "policies and the app ask the user's membership here",
    "EXECUTE on function public.app_org_id()": "every policy's org scope",
    "EXECUTE on function public.app_role()": "policies narrow by role",
    "EXECUTE on function public.app_contractor_id()": "policies narrow a contractor to its own rows",
    "EXECUTE on function public.app_visible_user_ids()": "the users policy: the people one shares an org with",
    "EXECUTE on function public.app_sent_engagement_ids()": "a contractor sees milestones of sent work requests",
    "EXECUTE on function public.search_hits(p_kind text, p_words tsquery, p_limit integer)": (
        "the header's search: ids and ranks of the caller's org through GIN (SECURITY DEFINER; RLS reads the rows)"
    ),
    "EXECUTE on function public.app_contractor_project_ids()": (
        "the projects policy: those a contractor is invited to or proposed on (SECURITY DEFINER; its own only)"
    ),
    # the domain's rules in SQL (sql/rules.sql), pure: those a statement of the web role's calls. The others
    # (money_percent_of, milestone_amounts, withheld_bps, is_manager) only SECURITY DEFINER guards call, as the
    # owner.
    "EXECUTE on function public.can_decide(p_role text, p_user_id uuid, p_owner_user_id uuid)": (
        "the review queue's query asks whose turn it is (queries/reviews)"
    ),
    "EXECUTE on function public.reviewable(p_engagement_status text)": (
        "the review queue's query asks where work is reviewed (queries/reviews)"
    ),
    "EXECUTE on function public.engagement_move_roles(p_source text, p_target text)": (
        "engagements_guard runs as the caller (not SECURITY DEFINER) and asks it who makes a move"
    ),
    "EXECUTE on function public.milestone_move_refusal(p_source text, p_target text, p_role text,"
    " p_engagement_status text)": "milestones_guard runs as the caller and asks it whether a move is refused",
    "EXECUTE on function public.invoice_move_allowed(p_source text, p_target text)": (
        "invoices_move_guard (per row) and invoices_exported_check (per export statement) run as the caller"
        " and ask it which moves exist"
    ),
    "EXECUTE on function public.ap_csv_text(p_value text)": "the AP export renders its CSV cells with it (pure)",
    # sign-in, invitations, password resets (sql/auth.sql)
    "EXECUTE on function public.my_memberships()": "the organization switcher: the signed-in user's own",
    "EXECUTE on function public.auth_password_salt(p_email text, p_method text)": (
        "sign-in hashes the password with the account's method and salt (never the hash; made up for no account)"
    ),
    "EXECUTE on function public.auth_sign_in(p_email text, p_candidate text)": (
        "sign-in: the database compares the hash, keeps the throttle and opens the session whose token it makes"
    ),
    "EXECUTE on function public.auth_sign_out()": "signing out ends the signed-in person's own sessions",
    "EXECUTE on function public.invite_user_account(p_email text, p_name text)": (
        "an admin's invitation creates the account (users has no INSERT grant)"
    ),
    "EXECUTE on function public.invite_details(p_token_hash text)": "the invitation page, by its token's hash",
    "EXECUTE on function public.accept_invite(p_token_hash text, p_password_hash text)": "accepting an invitation",
    "EXECUTE on function public.password_reset_start(p_email text)": (
        "forgot password: the database makes the token, which only the worker's email carries"
    ),
    "EXECUTE on function public.password_reset_email(p_token_hash text)": "the reset page shows whose link it is",
    "EXECUTE on function public.password_reset_finish(p_token_hash text, p_password_hash text)": (
        "setting the new password from a reset link"
    ),
    # the job queue (sql/jobs.sql): the web role's only way in
    "EXECUTE on function public.enqueue_job(p_task text, p_args jsonb)": (
        "enqueues the web's job kinds for the current organization, in the caller's transaction; the web role"
        " has nothing in the procrastinate schema"
    ),
    "EXECUTE on function public.tax_form_problems(p_contractor_ids uuid[])": (
        "whether contractors' tax forms are complete and the org requires one (queries/tax.tax_form_blocks), for"
        " every member who sees the contractor, project owners included, who read no tax profile (sql/tax.sql)"
    ),
    # the project and proposal rules (sql/projects.sql): the guards run as the caller and call them; the services
    # ask the database for the day deadlines are compared with
    "EXECUTE on function public.project_move_roles(p_source text, p_target text)": (
        "projects_guard runs as the caller and asks it who moves a project"
    ),
    "EXECUTE on function public.proposal_move_roles(p_source text, p_target text)": (
        "proposals_guard runs as the caller and asks it who moves a proposal"
    ),
    "EXECUTE on function public.project_takes_proposals(p_status text, p_deadline date, p_today date)": (
        "proposals_guard and proposal_parts_guard ask whether a proposal may still change"
    ),
    "EXECUTE on function public.project_fixed_once_proposed()": (
        "projects_guard asks what a project asks that is fixed once someone proposed"
    ),
    "EXECUTE on function public.project_allows_withdrawal(p_status text)": (
        "proposals_guard asks whether a waiting proposal may still be withdrawn"
    ),
    "EXECUTE on function public.proposal_refusal(p_status text, p_deadline date, p_today date, p_audience text,"
    " p_invited boolean, p_has_proposal boolean)": "proposals_guard asks why a new proposal is refused",
    "EXECUTE on function public.proposal_refusal_message(p_refusal text)": (
        "the guards say a refusal in the domain's words (pure)"
    ),
    "EXECUTE on function public.project_today()": (
        "the day deadlines are compared with, the database's in UTC (queries/projects.today and the guards)"
    ),
    # completion billing (revision 0030; sql/completion.sql): SECURITY DEFINER, each reading rows the caller's
    # policies may hide, for the guards that run as the caller
    "EXECUTE on function public.completion_settled(p_org uuid, p_engagement uuid)": (
        "engagements_guard runs as the caller and asks it whether a completion engagement's final payment is settled,"
        " the one way such an engagement is completed"
    ),
    "EXECUTE on function public.completion_close(p_org uuid, p_engagement uuid)": (
        "completes a completion engagement whose final payment is settled (services/completion.close_if_settled),"
        " for an approval step's decider too, who may be finance and updates no engagement; its own org only"
    ),
    "EXECUTE on function public.task_invoice_voided_now(p_org uuid, p_milestone uuid)": (
        "milestones_guard runs as the caller and asks it whether a rejected approval step voided the task's invoice"
        " in this transaction (the one way an approved task goes back to planned)"
    ),
    "EXECUTE on function public.proposal_task_pool(p_org uuid, p_proposal uuid)": (
        "the proposals' commit checks run as the contractor's user and ask it what a proposal's milestones share"
        " (its price less a completion project's advance); one proposal of the caller's org"
    ),
    "EXECUTE on function public.service_health()": (
        "GET /healthz: the schema's revision and how many job workers beat lately (nothing of any tenant)"
    ),
    "EXECUTE on function public.invoice_acceptances_seen(p_invoice_ids uuid[])": (
        "where the contractor's answer to each self-billed invoice stands, by the database's clock"
        " (queries/self_billing), for every member who sees the invoice, project owners included, who read no"
        " document; a contractor's user its own contractor's only (sql/self_billing.sql)"
    ),
}

WEB_ROLE = {
    "role attribute LOGIN": "the web server signs in as it; no other attribute (not even INHERIT)",
    "CONNECT on database": "the web server's connection (no CREATE, no TEMPORARY: it creates nothing)",
    "USAGE on schema public": "the application's tables and functions; no CREATE, and no other schema",
    **WEB_ROLE_TABLES,
    **WEB_ROLE_FUNCTIONS,
}

# --- the worker role ----------------------------------------------------------------------------------

PROCRASTINATE_TABLES = (
    "procrastinate_events",
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
)
PROCRASTINATE_FUNCTIONS = (
    "procrastinate_cancel_job_v1(job_id bigint, abort boolean, delete_job boolean)",
    "procrastinate_defer_jobs_v1(jobs procrastinate.procrastinate_job_to_defer_v1[])",
    "procrastinate_defer_periodic_job_v2(_queue_name character varying, _lock character varying,"
    " _queueing_lock character varying, _task_name character varying, _priority integer,"
    " _periodic_id character varying, _defer_timestamp bigint, _args jsonb)",
    "procrastinate_fetch_job_v2(target_queue_names character varying[], p_worker_id bigint)",
    "procrastinate_finish_job_v1(job_id bigint, end_status procrastinate.procrastinate_job_status, delete_job boolean)",
    "procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat double precision)",
    "procrastinate_register_worker_v1()",
    "procrastinate_retry_job_v1(job_id bigint, retry_at timestamp with time zone, new_priority integer,"
    " new_queue_name character varying, new_lock character varying)",
    "procrastinate_retry_job_v2(job_id bigint, retry_at timestamp with time zone, new_priority integer,"
    " new_queue_name character varying, new_lock character varying)",
    "procrastinate_unregister_worker_v1(worker_id bigint)",
    "procrastinate_update_heartbeat_v1(worker_id bigint)",
)

# The tenant tables: what the jobs of backoffice/jobs and the services they call read and write (notify,
# send_email, send_password_reset, issue_receipt, the review reminder, the finance digest), granted by
# pg_temp.grant_to_worker. Until revision 0010 the worker held every privilege of the web role's as well.
WORKER_ROLE_TABLES = {
    # what a notice or a receipt says (services/notification_events, services/receipts)
    "SELECT on table public.organizations": "whose voice a message speaks in, its locale; the review SLA",
    "SELECT on table public.users (email, id, is_active, name)": (
        "to whom a message goes and who acted (notification_events._people, receipts' approver); nothing else"
    ),
    "SELECT on table public.memberships": "who in the organization a notice is for (its role and contractor)",
    "SELECT on table public.contractors (ap_vendor_id, email, id, legal_name, org_id)": (
        "the payee named in a notice and on a receipt; never its payout details"
    ),
    "SELECT on table public.engagements": "what each notice and receipt is about",
    "SELECT on table public.milestones": "the milestone a notice or a receipt names",
    "SELECT on table public.change_orders": "the change order's notice",
    "SELECT on table public.submissions": "the submitted and the overdue review notices",
    "SELECT on table public.evidence_files": "a receipt lists the evidence and its hashes; a notice counts files",
    "SELECT on table public.reviews": "the decision's notice; a receipt's evidence is its review's",
    "SELECT on table public.invoices": "receipts, the finance digest and the money notices",
    "SELECT on table public.payments": "the payment's notice",
    "SELECT on table public.ap_export_batches": "the exported batch's notice",
    # what the jobs write
    "SELECT on table public.audit_events": "a receipt and the finance digest carry the chain head (audit.current_head)",
    "INSERT on table public.audit_events": "issuing a receipt is audited with its hash (services/receipts)",
    "SELECT on table public.email_messages": (
        "delivering a message reads and locks it (services/email_delivery); store_message reads its new id back"
    ),
    "INSERT on table public.email_messages (attempts, dedupe_key, entity_id, entity_type, event, html, id, link,"
    " org_id, recipient, recipient_user_id, status, subject, text)": (
        "every notice's email (notifications.store_message), a held one's link for the daily digest; never how"
        " or when it was delivered"
    ),
    "UPDATE on table public.email_messages (attempts, digest_id, last_error, provider_id, sent_at, status,"
    " updated_at)": (
        "delivering the outbox's email records how each attempt went (services/email_delivery); the daily digest"
        " marks each held message it carried (digest_id, services/digests); the web role may only send one again"
        " (status, updated_at)"
    ),
    "SELECT on table public.user_preferences": (
        "a notice's recipients' time zones and whether their emails wait for the daily digest (services/digests)"
    ),
    "SELECT on table public.account_messages": (
        "delivering a password reset's email reads and locks it (services/email_delivery); store_message reads"
        " its new id back; the web role holds nothing on it"
    ),
    "INSERT on table public.account_messages (attempts, dedupe_key, entity_id, entity_type, event, html, id,"
    " recipient, recipient_user_id, status, subject, text)": (
        "every password reset's email (password_resets.mail_reset); never how or when it was delivered"
    ),
    "UPDATE on table public.account_messages (attempts, last_error, provider_id, sent_at, status, updated_at)": (
        "delivering a password reset's email records how each attempt went (services/email_delivery)"
    ),
    "INSERT on table public.notifications (body, dedupe_key, event, id, org_id, title, url, user_id)": (
        "each notice's in-app notification (notifications._store_notice); it reads none back (it is nobody's"
        " user), and never writes when one was made or read"
    ),
    "SELECT on table public.documents": (
        "a receipt or a remittance advice is issued once: the job looks for it first, and reads it back"
    ),
    "INSERT on table public.documents": (
        "the issue_receipt and issue_remittance_advice jobs file them (services/receipts, remittance_advice)"
    ),
    "SELECT on table public.rail_events": "apply_rail_event reads the event it applies",
    "UPDATE on table public.rail_events (applied_at, outcome)": "apply_rail_event marks it applied, with what it did",
    "SELECT on table public.payout_accounts": "apply_rail_event finds the account an event is about",
    "UPDATE on table public.payout_accounts (currently_due, details_submitted, payouts_enabled, transfers_active,"
    " updated_at)": "apply_rail_event keeps what Stripe says of the account now",
    # paying through Stripe (revision 0024): the pay_out job closes an attempt with what Stripe answered
    "SELECT on table public.payout_attempts": "pay_out and the sweep read the attempt they make the transfer of",
    "SELECT on table public.holds": "pay_out asks whether a hold came after the payment was sent (issue 18)",
    "EXECUTE on function public.invoice_held(p_org uuid, p_invoice uuid, p_contractor uuid)": (
        "invoices_move_guard asks it when pay_out records a payment"
    ),
    "SELECT on table public.invoice_approvals": "the approval reminders read what waits (issue 18)",
    "UPDATE on table public.invoice_approvals (reminded_at)": "the approval reminders stamp when they reminded",
    "SELECT on table public.approval_delegations": "the approval reminders tell a stand-in too",
    "INSERT on table public.payout_attempts": "automatic payment on the due date (stripe_payouts.pay_due)",
    "UPDATE on table public.payout_attempts (failure_code, failure_words, finished_at, payment_id, status,"
    " transfer_id, tries)": "pay_out closes the attempt as succeeded or refused; transfer.reversed marks it reversed",
    "INSERT on table public.payments": "pay_out records the Stripe payment (payments_guard: only a rail's)",
    "UPDATE on table public.payments (reversal_reference, reversed_at)": "transfer.reversed reverses it, once",
    "UPDATE on table public.invoices (exported_at, paid_at, status)": (
        "an invoice handed to Stripe, paid by it, refused (on hold) or reversed (invoices_move_guard)"
    ),
    "INSERT on table public.ledger_entries": "a Stripe payment's and a reversal's ledger lines",
    # reconciling Stripe (revision 0026): the reconcile_stripe jobs keep each run and its findings, once
    "SELECT on table public.rail_reconciliations": "a run compares its findings with the run before (new ones tell)",
    "INSERT on table public.rail_reconciliations": "reconcile_stripe and the daily run keep each run (reconciliation)",
    "SELECT on table public.rail_reconciliation_findings": (
        "a run's notice lists its findings, and the next run tells only of findings the run before did not have"
    ),
    "INSERT on table public.rail_reconciliation_findings": "each run keeps its findings, in words, with the run",
    # from project to contract (revision 0029): what the project notices say and to whom (services/project_notices);
    # never a proposal's milestones or files
    "SELECT on table public.project_categories": "a project's notice names its category",
    "SELECT on table public.projects": "what a project's notice is about (opened, awarded, cancelled)",
    "SELECT on table public.project_invitations": "who a project's opening notice goes to",
    "SELECT on table public.proposals": "who proposed, told of the award or the cancellation; the owner told of one",
    # completion billing (revision 0030): read only, never written by a job
    "SELECT on table public.invoice_tasks": "a task or final invoice's notice and receipt list the tasks it bills",
}

# Background jobs (DESIGN.md sections 5 and 6): the queue is theirs, and in the tenant tables they act with an
# admin's reach in the one organization a job names, through the same policies as the web role.
WORKER_ROLE = {
    "role attribute LOGIN": "the worker process signs in as it; no other attribute (not even INHERIT)",
    "CONNECT on database": "the worker's connection (no CREATE, no TEMPORARY)",
    "USAGE on schema public": "the tenant tables and the policy helpers",
    "USAGE on schema procrastinate": "the job queue is procrastinate's schema, which has no row-level security",
    **{
        f"{privilege} on table procrastinate.{table}": "procrastinate takes, retries and finishes jobs in its tables"
        for table in PROCRASTINATE_TABLES
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
    },
    **{
        f"{privilege} on sequence procrastinate.{table}_id_seq": "the ids of procrastinate's rows"
        for table in PROCRASTINATE_TABLES
        for privilege in ("USAGE", "SELECT")
    },
    **{
        f"EXECUTE on function procrastinate.{function}": "procrastinate's worker API: fetch, finish, retry, heartbeat"
        for function in PROCRASTINATE_FUNCTIONS
    },
    **WORKER_ROLE_TABLES,
    # the context helpers its policies call, as for the web role (no rule of sql/rules.sql, no ap_csv_text:
    # no job exports or decides)
    **{
        privilege: why
        for privilege, why in WEB_ROLE_FUNCTIONS.items()
        if privilege.startswith("EXECUTE on function public.app_")
    },
    "EXECUTE on function public.enqueue_job(p_task text, p_args jsonb)": (
        "a job's own follow-up jobs (a notice's emails) go in through the same checks as the web's"
    ),
    "EXECUTE on function public.job_org_ids()": "the periodic jobs run once per organization; the worker's alone",
    "SELECT on table public.einvoice_profiles": "an e-invoice names both parties (services/einvoices)",
    "SELECT on table public.self_billing_agreements": "no e-invoice without a confirmed self-billing agreement",
    "SELECT on table public.invoice_acceptances": "notices of a contractor's answer",
    "EXECUTE on function public.acceptance_blocks(p_invoice_ids uuid[])": (
        "automatic payment skips what the contractor's answer stops (queries/payability.holds_on)"
    ),
    "EXECUTE on function public.tax_form_problems(p_contractor_ids uuid[])": (
        "automatic payment skips a contractor its organization's tax-form rule blocks (stripe_payouts.plan)"
    ),
    "EXECUTE on function public.invoice_move_allowed(p_source text, p_target text)": (
        "invoices_move_guard runs as the caller, and the worker moves an invoice Stripe paid, refused or reversed"
    ),
    "EXECUTE on function public.password_reset_token(p_reset_id uuid)": (
        "the reset email's job reads the token to mail it; the worker's alone, never the web role's"
    ),
    "EXECUTE on function public.project_today()": (
        "an invitation's notice goes out only while its project takes proposals, judged on the database's day"
    ),
}


def differences(held: set[str], allowed: dict[str, str]) -> tuple[list[str], list[str]]:
    return sorted(held - set(allowed)), sorted(set(allowed) - held)


def check(conn, role: str, allowed: dict[str, str], who: str) -> None:
    unexpected, gone = differences(privileges_of(conn, role), allowed)
    problems = [f"{who} holds a privilege the allow-list does not name: {p}" for p in unexpected]
    problems += [f"{who} no longer holds this allow-listed privilege: {p}" for p in gone]
    assert not problems, "\n".join(problems)


def test_every_privilege_of_the_web_role_is_on_its_allow_list(app_engine, database):
    with app_engine.connect() as conn:
        check(conn, make_url(database.app_url).username, WEB_ROLE, "the web role")


def test_every_privilege_of_the_worker_role_is_on_its_allow_list(app_engine, database):
    with app_engine.connect() as conn:
        check(conn, make_url(database.worker_url).username, WORKER_ROLE, "the worker role")


@pytest.mark.parametrize("allowed", [WEB_ROLE, WORKER_ROLE], ids=["web role", "worker role"])
def test_every_allowed_privilege_says_why(allowed):
    assert allowed
    assert [p for p, why in allowed.items() if len(why.split()) < 3] == []


def test_the_listing_notices_a_privilege_granted_by_hand(app_engine, admin_engine, database):
    """The check itself: a column privilege granted behind the allow-list's back is named."""
    role = make_url(database.app_url).username
    with admin_engine.begin() as conn:
        conn.execute(text(f'grant update (org_id) on public.engagements to "{role}"'))
        try:
            unexpected, gone = differences(privileges_of(conn, role), WEB_ROLE)
        finally:
            conn.rollback()
    assert any(p.startswith("UPDATE on table public.engagements (") and "org_id" in p for p in unexpected), unexpected
    assert any(p.startswith("UPDATE on table public.engagements (") for p in gone), gone


def test_a_trigger_function_cannot_be_called_directly(app_engine):
    """Why the listing leaves trigger functions out: EXECUTE on one gives the caller nothing."""
    with app_engine.connect() as conn, pytest.raises(DBAPIError, match="trigger functions can only be called"):
        conn.execute(text("select milestones_guard()"))


# --- what the column grants refuse, as raw SQL --------------------------------------------------------

# Each names a column the web role's pages never write: ids, org and contractor ids, who created a row.
REFUSED_UPDATES = [
    "update organizations set id = gen_random_uuid() where id = :org",
    "update contractors set org_id = :org where org_id = :org",
    "update engagements set org_id = :org where org_id = :org",
    "update engagements set created_by = :me where org_id = :org",
    "update milestones set engagement_id = engagement_id where org_id = :org",
    "update milestones set contractor_id = contractor_id where org_id = :org",
    "update users set name = 'Renamed' where id = :me",
    "update invoices set updated_at = now() where org_id = :org",
]


@pytest.mark.parametrize("sql", REFUSED_UPDATES)
def test_the_web_role_cannot_update_a_column_no_page_edits(world, act_as, sql):
    """Even an admin in its own organization: the column privilege is not there."""
    s = act_as(world.admin.id, world.org_a)
    with pytest.raises(DBAPIError, match="permission denied"):
        s.execute(text(sql), {"org": world.org_a, "me": world.admin.id})
    s.rollback()
