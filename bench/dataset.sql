-- The bulk load of bench/dataset.py: a large organization shaped like a big customer, and many small ones
-- beside it. dataset.py runs each step below in order, in one transaction, as the owner role, with the user
-- triggers (guards, the audit chain, the commit-time checks) of every table but the projects' (see that step)
-- switched off; the foreign keys and CHECK constraints still hold every row. So the rows here keep the rules the guards would have kept:
-- the state machines of DESIGN.md section 3, the money rules of section 4.
--
-- Parameters are psycopg's named placeholders, so this file holds no literal per-cent sign anywhere
-- (modulo is mod()): psycopg would read one as a placeholder, in a comment too.
--
-- Shapes, per engagement k (0-based, per organization):
--   large: k mod 50 = 0 draft, 1 awaiting acceptance, 2 cancelled (from draft): 6 planned milestones each;
--          3 paused: 15 milestones, 1-10 approved; 4, 5 completed: 15 approved;
--          otherwise active, 15 milestones: 1-12 approved, 13 and 14 submitted, 15 submitted when k mod 10
--          is 1, 2 or 3, else planned (disputed once when k mod 10 = 4).
--   other: active, 10 milestones: 1 approved, 2 submitted, the rest planned.
--   Billed on completion (DESIGN.md section 4): the large organization's engagements with k mod 100 = 1, 3, 4, 7 or 11
--   (awaiting acceptance, paused, completed, active, active; 5 in 100, all five of Contractor 0001): the same tasks,
--   the last one taking the rounding so that they share the contract value less the advance exactly; an advance
--   invoice at acceptance (when there is one: 12, 10, 0 or 25 percent by k / 100), a task invoice raised by the
--   contractor's user for each three approved tasks of 1-9 (tasks 10-12 approved and not yet invoiced: what the
--   contractor's invoicing page offers), and for a completed one a task invoice of 10-12 and the final payment of
--   13-15 with the last approval, so its invoices add up to the contract value (invariant 6).
-- Submitted work carries links; the large organization's waiting submissions carry 1-3 evidence files too.
-- Every approval has its invoice (numbered per organization in approval order) and its ledger lines; under completion
-- billing an approval authorizes nothing by itself (the invoices above instead).

-- step: organizations
insert into organizations (id, name, invoice_prefix, partial_policy, ap_export_preset, created_at)
values (%(org)s, 'Large Customer Holdings', 'LRG', 'split', 'quickbooks_online', now() - interval '800 days');

create temp table other_org on commit drop as
select gen_random_uuid() as id, g as n, 'T' || lpad(g::text, 3, '0') as prefix
  from generate_series(1, %(other_orgs)s) g;
insert into organizations (id, name, invoice_prefix, created_at)
select id, 'Tenant ' || lpad(n::text, 3, '0'), prefix, now() - interval '800 days' from other_org;

-- step: people
-- The large organization's staff (admins, project owners, finance) and one user per contractor; one owner
-- and one user per contractor in each other organization. Every one signs in with the same password.
create temp table person on commit drop as
select gen_random_uuid() as id, %(org)s::uuid as org_id, r.role, r.n, r.role || r.n || '@large.bench.example' as email,
       initcap(r.role) || ' ' || r.n as name
  from (select 'admin' as role, g as n from generate_series(1, %(admins)s) g
        union all select 'owner', g from generate_series(1, %(owners)s) g
        union all select 'finance', g from generate_series(1, %(finance)s) g) r
union all
select gen_random_uuid(), o.id, 'owner', 1, 'owner@' || lower(o.prefix) || '.bench.example', 'Owner of ' || o.prefix
  from other_org o;

create temp table firm on commit drop as
select gen_random_uuid() as id, gen_random_uuid() as user_id, %(org)s::uuid as org_id, 'LRG' as prefix, g as n
  from generate_series(0, %(contractors)s - 1) g
union all
select gen_random_uuid(), gen_random_uuid(), o.id, o.prefix, g
  from other_org o cross join generate_series(0, %(other_contractors)s - 1) g;

insert into contractors (id, org_id, legal_name, email, ap_vendor_id, payout_details, created_at)
select id, org_id, 'Contractor ' || lpad((n + 1)::text, 4, '0') || ' Ltd',
       'ap@c' || (n + 1) || '.' || lower(prefix) || '.example', 'V-' || lpad((n + 1)::text, 5, '0'),
       'ACH ending ' || lpad(mod(n * 7919, 10000)::text, 4, '0'), now() - interval '790 days'
  from firm;

insert into users (id, email, name, password_hash, created_at)
select id, email, name, %(password_hash)s, now() - interval '790 days' from person
union all
select user_id, 'user@c' || (n + 1) || '.' || lower(prefix) || '.example', 'Contractor user ' || (n + 1),
       %(password_hash)s, now() - interval '790 days'
  from firm;

insert into memberships (org_id, user_id, role, created_at, accepted_at)
select org_id, id, role, now() - interval '790 days', now() - interval '790 days' from person;
insert into memberships (org_id, user_id, role, contractor_id, created_at, accepted_at)
select org_id, user_id, 'contractor', id, now() - interval '790 days', now() - interval '790 days' from firm;

-- step: engagements
create temp table eng on commit drop as
select gen_random_uuid() as id, %(org)s::uuid as org_id, 'large' as shape, 'LRG' as prefix, k,
       c.id as contractor_id, c.user_id as contractor_user_id, o.id as owner_id,
       (array['Kitchen renovation', 'Office fit-out', 'Roof replacement', 'Facade repair', 'HVAC upgrade',
              'Lobby refresh', 'Parking lot resurfacing', 'Electrical rewiring', 'Data centre cabling',
              'Warehouse racking', 'Landscaping', 'Signage'])[1 + mod(k, 12)] || ', site ' || (k + 1) as title,
       'SOW-L-' || lpad((k + 1)::text, 6, '0') as sow_reference,
       case when mod(k, 10) = 9 then 'EUR' else 'USD' end as currency,
       case when mod(k, 7) = 0 then 500 else 1000 end as retainage_bps,
       30 as terms,
       case mod(k, 50) when 0 then 'draft' when 1 then 'awaiting_acceptance' when 2 then 'cancelled'
                       when 3 then 'paused' when 4 then 'completed' when 5 then 'completed' else 'active' end as status,
       now() - make_interval(days => 90 + mod(k * 37, 640), secs => mod(k * 7919, 86400)) as created_at
  from generate_series(0, %(engagements)s - 1) k
  join firm c on c.org_id = %(org)s and c.n = least(k / 20, %(contractors)s - 1)
  join person o on o.org_id = %(org)s and o.role = 'owner' and o.n = 1 + mod(k, %(owners)s)
union all
select gen_random_uuid(), c.org_id, 'other', c.prefix, c.n * %(other_engagements_per_contractor)s + g,
       c.id, c.user_id, o.id,
       'Maintenance contract ' || (c.n * %(other_engagements_per_contractor)s + g + 1),
       'SOW-' || lpad((c.n * %(other_engagements_per_contractor)s + g + 1)::text, 6, '0'),
       'USD', 500, 30, 'active',
       now() - make_interval(days => 90 + mod((c.n * %(other_engagements_per_contractor)s + g) * 37, 640))
  from firm c
  join person o on o.org_id = c.org_id and o.role = 'owner'
 cross join generate_series(0, %(other_engagements_per_contractor)s - 1) g
 where c.org_id <> %(org)s;

alter table eng add column sent_at timestamptz, add column responded_at timestamptz, add column completed_at timestamptz,
                add column cancelled_at timestamptz;
update eng set sent_at = case when status not in ('draft', 'cancelled') then created_at + interval '1 day' end,
               responded_at = case when status in ('active', 'paused', 'completed') then created_at + interval '2 days' end,
               cancelled_at = case when status = 'cancelled' then created_at + interval '3 days' end;
-- Completion billing's terms; the contract value and the advance's amount follow from the tasks (next step).
alter table eng add column billing_mode text not null default 'milestone', add column advance_bps integer not null default 0,
                add column contract_value_minor bigint, add column advance_minor bigint not null default 0;
update eng set billing_mode = 'completion', advance_bps = (array[1200, 1000, 0, 2500])[1 + mod(k / 100, 4)]
 where shape = 'large' and mod(k, 100) in (1, 3, 4, 7, 11);
analyze eng;

-- step: milestones
-- When each milestone's work was submitted and decided: approved work in order over the engagement's life,
-- waiting work within the last 45 days, the disputed revision 50-70 days ago.
create temp table ms on commit drop as
with shaped as (
  select gen_random_uuid() as id, e.id as engagement_id, e.org_id, e.shape, e.billing_mode, e.prefix, e.k, s.seq,
         e.contractor_id,
         e.contractor_user_id, e.owner_id, e.currency, e.retainage_bps, e.terms, e.title as engagement_title,
         e.responded_at, e.created_at as engagement_created_at,
         (array['Site survey', 'Design package', 'Permits', 'Demolition', 'Foundations', 'Structure', 'Rough-in',
                'Inspection', 'Enclosure', 'Finishes', 'Fixtures', 'Commissioning', 'Training', 'Punch list',
                'Handover'])[s.seq]
           as title,
         100000 + mod(e.k * 7919 + s.seq * 104729, 900000) as amount,
         case
           when e.status in ('draft', 'awaiting_acceptance', 'cancelled') then 'planned'
           when e.status = 'completed' then 'approved'
           when e.status = 'paused' then case when s.seq <= 10 then 'approved' else 'planned' end
           when e.shape = 'other' then case s.seq when 1 then 'approved' when 2 then 'submitted' else 'planned' end
           when s.seq <= 12 then 'approved'
           when s.seq <= 14 or mod(e.k, 10) between 1 and 3 then 'submitted'
           else 'planned'
         end as status,
         e.shape = 'large' and e.status = 'active' and s.seq = 15 and mod(e.k, 10) = 4 as disputed
    from eng e
   cross join generate_series(1, case when e.status in ('draft', 'awaiting_acceptance', 'cancelled') then 6
                                       when e.shape = 'other' then 10 else 15 end) s(seq)
), timed as (
  select *,
         case when status = 'approved'
                then responded_at + (now() - responded_at - interval '3 days') * (seq / 16.0)::float8
              when status = 'submitted' then now() - make_interval(days => mod(k * 13 + seq, 45), hours => 1 + mod(k, 20))
              when disputed then now() - make_interval(days => 50 + mod(k, 20))
         end as submitted_at
    from shaped
)
select *,
       case when status = 'approved' or disputed then submitted_at + make_interval(hours => 4 + mod(k + seq, 40))
       end as reviewed_at,
       case when status = 'approved' then (submitted_at + interval '2 days')::date
            when status = 'submitted' then (submitted_at + make_interval(days => mod(k, 14) - 4))::date
            else (now() + make_interval(days => 5 + mod(k * 3 + seq * 11, 90)))::date
       end as due_date
  from timed;
analyze ms;

-- A completion engagement's contract value: its tasks grossed up by the advance's rate, rounded up to whole hundreds;
-- the advance round_half_up(value × rate / 10000); the last task takes what the rounding leaves, so the tasks share
-- the value less the advance exactly (completion_schedule_problem).
create temp table terms on commit drop as
select v.engagement_id, v.value, money_percent_of(v.value, v.advance_bps) as advance, v.tasks, v.last_seq
  from (select ms.engagement_id, e.advance_bps, sum(ms.amount) as tasks, max(ms.seq) as last_seq,
               (ceil(sum(ms.amount) * 10000.0 / (10000 - e.advance_bps) / 10000) * 10000)::bigint as value
          from ms join eng e on e.id = ms.engagement_id
         where e.billing_mode = 'completion' group by 1, 2) v;
update ms set amount = ms.amount + t.value - t.advance - t.tasks
  from terms t where t.engagement_id = ms.engagement_id and t.last_seq = ms.seq;
update eng set contract_value_minor = t.value, advance_minor = t.advance from terms t where t.engagement_id = eng.id;

-- Completed with the last approval: a completion engagement by its final payment, in that approval's transaction.
update eng set completed_at = d.last + case when eng.billing_mode = 'completion' then interval '0' else interval '1 hour' end
  from (select engagement_id, max(reviewed_at) as last from ms group by engagement_id) d
 where d.engagement_id = eng.id and eng.status = 'completed';

-- The owner confirmed the advance as it sent the work request (engagements_billing_guard).
insert into engagements (id, org_id, contractor_id, owner_user_id, title, sow_reference, currency, retainage_bps,
                         payment_terms_days, status, created_by, created_at, updated_at, sent_at, sent_by, responded_at,
                         responded_by, completed_at, cancelled_at, cancel_reason, billing_mode, contract_value_minor,
                         advance_bps, advance_minor, advance_confirmed_by, advance_confirmed_at)
select id, org_id, contractor_id, owner_id, title, sow_reference, currency, retainage_bps, terms, status, owner_id,
       created_at, greatest(created_at, sent_at, responded_at, completed_at, cancelled_at), sent_at,
       case when sent_at is not null then owner_id end, responded_at,
       case when responded_at is not null then contractor_user_id end, completed_at, cancelled_at,
       case when status = 'cancelled' then 'The client postponed the project indefinitely.' end,
       billing_mode, contract_value_minor, advance_bps, advance_minor,
       case when advance_minor > 0 and sent_at is not null then owner_id end,
       case when advance_minor > 0 and sent_at is not null then sent_at end
  from eng;

insert into milestones (id, org_id, contractor_id, engagement_id, seq, title, deliverable, amount_minor, due_date, status,
                        created_at, updated_at, submitted_at)
select id, org_id, contractor_id, engagement_id, seq, title, title || ': as described in the statement of work.',
       amount, due_date, status, engagement_created_at, coalesce(reviewed_at, submitted_at, engagement_created_at),
       submitted_at
  from ms;


-- step: submissions
create temp table sub on commit drop as
select gen_random_uuid() as submission_id, ms.* from ms where submitted_at is not null;
analyze sub;

insert into submissions (id, org_id, contractor_id, milestone_id, revision, note, links, submitted_by, submitted_at)
select submission_id, org_id, contractor_id, id, 1, 'Delivered: ' || title || '. Evidence as agreed.',
       jsonb_build_array('https://files.example.com/' || engagement_id || '/' || seq), contractor_user_id, submitted_at
  from sub;

-- The large organization's waiting work also carries files: a report, site notes, an inspection sheet.
create temp table evidence on commit drop as
select gen_random_uuid() as id, s.submission_id, s.org_id, s.contractor_id, p.position, s.submitted_at,
       case p.position when 1 then 'report-' || s.seq || '.pdf' when 2 then 'site-notes-' || s.seq || '.txt'
                       else 'inspection-' || s.seq || '.pdf' end as file_name,
       case p.position when 2 then 'text/plain' else 'application/pdf' end as content_type,
       case p.position when 2 then convert_to('Site notes: ' || s.title || ', ' || s.engagement_title || E'.\n', 'UTF8')
            else decode('255044462d312e340a', 'hex')
                 || convert_to('1 0 obj << /Title (' || s.title || ' ' || s.submission_id || ') >> endobj' || E'\n', 'UTF8')
       end as data
  from sub s cross join generate_series(1, 1 + mod(s.k + s.seq, 3)) p(position)
 where s.shape = 'large' and s.status = 'submitted';

insert into evidence_files (id, org_id, contractor_id, submission_id, position, file_name, content_type, size_bytes,
                            sha256, created_at)
select id, org_id, contractor_id, submission_id, position, file_name, content_type, octet_length(data),
       encode(sha256(data), 'hex'), submitted_at
  from evidence;
insert into evidence_chunks (org_id, contractor_id, file_id, chunk_no, data)
select org_id, contractor_id, id, 0, data from evidence;

-- step: reviews
-- Approvals by the engagement's project owner; the disputed revisions went back to the contractor with a reason.
-- The evidence hashes a review records are its submission's files: none, for decided work (links only).
create temp table rev on commit drop as
select gen_random_uuid() as review_id, sub.* from sub where reviewed_at is not null;
analyze rev;

insert into reviews (id, org_id, contractor_id, milestone_id, submission_id, decision, reason, milestone_amount_minor,
                     evidence_sha256, reviewed_by, reviewed_at)
select review_id, org_id, contractor_id, id, submission_id, case when disputed then 'dispute' else 'approve' end,
       case when disputed then 'Please attach the signed inspection sheet for this milestone.' end, amount, '{}',
       owner_id, reviewed_at
  from rev;

-- step: invoices
-- One per approval, authorized by the approver at the moment of approval, due after the engagement's terms. Under
-- completion billing instead: the advance, authorized in the name of the owner who confirmed it as the contractor
-- accepted; a task invoice per three approved tasks, raised by the contractor's user a day after the last of them was
-- approved and authorized in its approver's name; and on a completed engagement the final payment of the last three
-- tasks, authorized with the last approval (services/completion.py). Each task an invoice bills is its invoice_tasks row.
create temp table task_bill on commit drop as
with billed as (
  select r.*, (r.seq - 1) / 3 as grp, e.status = 'completed' and r.seq > 12 as final
    from rev r join eng e on e.id = r.engagement_id
   where r.billing_mode = 'completion' and not r.disputed and (r.seq <= 9 or e.status = 'completed')
), grouped as (
  select engagement_id, grp, gen_random_uuid() as invoice_id from billed group by 1, 2
)
select g.invoice_id, b.* from billed b join grouped g on g.engagement_id = b.engagement_id and g.grp = b.grp;
analyze task_bill;

create temp table inv on commit drop as
with authorized as (
  select gen_random_uuid() as invoice_id, 'milestone' as kind, org_id, contractor_id, engagement_id, id as milestone_id,
         review_id, shape, prefix, engagement_title, title, currency, amount, retainage_bps, terms, owner_id,
         contractor_user_id, null::uuid as raised_by, reviewed_at as authorized_at
    from rev where not disputed and billing_mode = 'milestone'
  union all
  select gen_random_uuid(), 'advance', org_id, contractor_id, id, null, null, shape, prefix, title, 'advance', currency,
         advance_minor, 0, terms, owner_id, contractor_user_id, null, responded_at
    from eng where billing_mode = 'completion' and advance_minor > 0 and responded_at is not null
  union all
  select invoice_id, case when bool_and(final) then 'final' else 'completion' end, org_id, contractor_id, engagement_id,
         null, null, shape, prefix, engagement_title,
         case when bool_and(final) then 'final payment' else string_agg(title, ', ' order by seq) end, currency,
         sum(amount), retainage_bps, terms, owner_id, contractor_user_id,
         case when not bool_and(final) then contractor_user_id end,
         max(reviewed_at) + case when bool_and(final) then interval '0' else interval '1 day' end
    from task_bill
   group by invoice_id, org_id, contractor_id, engagement_id, shape, prefix, engagement_title, currency, retainage_bps,
            terms, owner_id, contractor_user_id
)
select a.*, gen_random_uuid() as txn_id,
       row_number() over (partition by org_id order by authorized_at, kind, milestone_id, engagement_id) as number,
       money_percent_of(amount, retainage_bps) as retainage
  from authorized a;
alter table inv add column batch_id uuid;
analyze inv;

insert into invoices (id, org_id, contractor_id, engagement_id, kind, milestone_id, review_id, number, invoice_number,
                      description, currency, gross_minor, retainage_bps, retainage_minor, net_minor, fee_bps, fee_minor,
                      total_minor, issued_on, due_date, status, authorized_by, authorized_at, updated_at, raised_by)
select invoice_id, org_id, contractor_id, engagement_id, kind, milestone_id, review_id, number,
       prefix || '-' || lpad(number::text, 6, '0'), left(engagement_title || ' — ' || title, 500), currency, amount,
       retainage_bps, retainage, amount - retainage, 0, 0, amount, authorized_at::date, authorized_at::date + terms,
       'approved', owner_id, authorized_at, authorized_at, raised_by
  from inv;

insert into invoice_tasks (org_id, invoice_id, milestone_id, engagement_id, contractor_id, amount_minor, created_at)
select t.org_id, t.invoice_id, t.id, t.engagement_id, t.contractor_id, t.amount, i.authorized_at
  from task_bill t join inv i on i.invoice_id = t.invoice_id;

insert into ledger_entries (org_id, txn_id, event, invoice_id, account, amount_minor, currency, created_at)
select i.org_id, i.txn_id, 'authorized', i.invoice_id, l.account, l.amount, i.currency, i.authorized_at
  from inv i
 cross join lateral (values ('work_expense', i.amount), ('accounts_payable', -(i.amount - i.retainage)),
                            ('retainage_payable', -i.retainage)) l(account, amount)
 where l.amount <> 0;

insert into org_counters (org_id, counter, last_value)
select org_id, 'invoice', max(number) from inv group by org_id;

-- step: batches
-- The large organization's oldest authorized payments went out in AP export batches of one currency each
-- (every tenth in EUR). dataset.py then renders each batch's file with the app's own query and seals it.
create temp table batch on commit drop as
select gen_random_uuid() as id, number, currency, row_number() over (partition by currency order by number) as idx
  from (select b as number, case when mod(b, 10) = 0 then 'EUR' else 'USD' end as currency
          from generate_series(1, %(batches)s) b) n;

update inv set batch_id = b.id
  from (select invoice_id, currency, row_number() over (partition by currency order by number) as r
          from inv where org_id = %(org)s) i
  join batch b on b.currency = i.currency and b.idx = (i.r - 1) / %(batch_size)s + 1
 where inv.invoice_id = i.invoice_id;

alter table batch add column created_at timestamptz;
update batch set created_at = t.last + interval '1 day'
  from (select batch_id, max(authorized_at) as last from inv where batch_id is not null group by batch_id) t
 where t.batch_id = batch.id;
delete from batch where created_at is null;  -- a currency with fewer payments than batches

insert into ap_export_batches (id, org_id, number, currency, preset, layout, selection, created_by, created_at)
select b.id, %(org)s, b.number, b.currency, 'quickbooks_online', %(layout)s::jsonb,
       jsonb_build_object('mode', 'selected', 'count', n.count, 'currency', b.currency),
       (select id from person where org_id = %(org)s and role = 'finance' and n = 1), b.created_at
  from batch b join (select batch_id, count(*) from inv where batch_id is not null group by batch_id) n
    on n.batch_id = b.id;

update invoices i set status = 'exported', batch_id = inv.batch_id, exported_at = b.created_at
  from inv join batch b on b.id = inv.batch_id
 where i.id = inv.invoice_id;

insert into org_counters (org_id, counter, last_value)
select %(org)s, 'ap_batch', max(number) from batch having count(*) > 0;

-- step: payments
-- The oldest batches are paid in full (one payment per invoice, by finance, who approved none of them); the
-- next one was voided by an admin before payment, so its invoices are back in the queue.
create temp table paid on commit drop as
select inv.invoice_id, inv.org_id, inv.contractor_id, inv.currency, inv.amount - inv.retainage as net, inv.batch_id,
       b.number as batch_number, least((b.created_at + interval '3 days')::date, current_date) as paid_at,
       b.created_at + interval '3 days 2 hours' as recorded_at, gen_random_uuid() as payment_id,
       gen_random_uuid() as txn_id
  from inv join batch b on b.id = inv.batch_id
 where b.number <= %(paid_batches)s;

insert into payments (id, org_id, contractor_id, invoice_id, amount_minor, currency, paid_at, reference, method, source,
                      batch_id, recorded_by, recorded_at)
select payment_id, org_id, contractor_id, invoice_id, net, currency, paid_at,
       'ACH run ' || to_char(paid_at, 'YYYY') || '-' || lpad(batch_number::text, 3, '0'), 'ach', 'batch', batch_id,
       (select id from person where org_id = %(org)s and role = 'finance' and n = 1), recorded_at
  from paid;

update invoices i set status = 'paid', paid_at = p.paid_at, updated_at = p.recorded_at
  from paid p where i.id = p.invoice_id;

insert into ledger_entries (org_id, txn_id, event, invoice_id, account, amount_minor, currency, created_at)
select p.org_id, p.txn_id, 'paid', p.invoice_id, l.account, l.amount, p.currency, p.recorded_at
  from paid p cross join lateral (values ('accounts_payable', p.net), ('cash', -p.net)) l(account, amount)
 where l.amount <> 0;

update ap_export_batches b
   set status = 'voided', voided_at = b.created_at + interval '2 hours',
       voided_by = (select id from person where org_id = %(org)s and role = 'admin' and n = 1),
       void_reason = 'Exported in the wrong layout; re-exported as QuickBooks Online bills.'
 where b.org_id = %(org)s and b.number = %(paid_batches)s + 1;
update invoices i set status = 'approved', batch_id = null, exported_at = null
  from ap_export_batches b
 where b.org_id = %(org)s and b.number = %(paid_batches)s + 1 and i.batch_id = b.id;

-- step: documents
-- The data room: the self-billed invoice (PDF; the receipt before revision 0031) of every authorized payment of the
-- large organization, issued by the job a couple of minutes after the approval. Small stand-ins for the PDFs (the
-- list pages never read the bytes).
insert into documents (org_id, kind, invoice_id, transaction_id, title, filename, content_type, content, size_bytes,
                       sha256, contractor_id, engagement_id, issued_at, vat_category, vat_bps, acceptance_days)
select i.org_id, 'self_billed_invoice', i.invoice_id, 'TX-' || upper(substr(md5(i.invoice_id::text), 1, 20)),
       left('Self-billed invoice ' || i.prefix || '-' || lpad(i.number::text, 6, '0') || ' — ' || i.engagement_title || ' — '
            || i.title, 300),
       'self-billed-invoice-' || i.prefix || '-' || lpad(i.number::text, 6, '0') || '.pdf', 'application/pdf', d.content,
       octet_length(d.content), encode(sha256(d.content), 'hex'), i.contractor_id, i.engagement_id,
       i.authorized_at + interval '2 minutes', '', 0, 14  -- no VAT stated; the default days of silence
  from inv i
 cross join lateral (select decode('255044462d312e340a', 'hex')
                            || convert_to('Self-billed invoice ' || i.prefix || '-' || lpad(i.number::text, 6, '0') || ' for '
                                          || i.engagement_title || ', ' || i.title || E'\n', 'UTF8') as content) d
 where i.org_id = %(org)s;

-- step: notifications
-- What the large organization's people were told, in the app and by email (kept in the outbox: no email
-- provider): the owner of each submission, the contractor of each decision and payment, finance of each batch.
create temp table told on commit drop as
select org_id, owner_id as user_id, 'milestone.submitted' as event, 'milestone.submitted:' || submission_id as key,
       'Ready for review: ' || title || ' (' || engagement_title || ')' as title,
       '/milestones/' || id as url, 'milestone' as entity_type, id::text as entity_id, submitted_at as at,
       reviewed_at as read_at
  from sub where shape = 'large'
union all
select org_id, contractor_user_id, case when disputed then 'milestone.disputed' else 'milestone.approved' end,
       case when disputed then 'milestone.disputed:' else 'milestone.approved:' end || review_id,
       case when disputed then 'Disputed: ' || title
            when billing_mode = 'completion' then 'Task ' || title || ' approved; you can invoice it'
            else 'Approved: ' || title || ' — queued for payment' end,
       '/milestones/' || id, 'milestone', id::text, reviewed_at,
       case when reviewed_at < now() - interval '30 days' then reviewed_at + interval '1 day' end
  from rev where shape = 'large'
union all
select p.org_id, u.user_id, 'payment.recorded', 'payment.recorded:' || p.payment_id,
       'Paid: ' || i.prefix || '-' || lpad(i.number::text, 6, '0'), '/invoices/' || p.invoice_id, 'invoice',
       p.invoice_id::text, p.recorded_at,
       p.recorded_at + interval '1 day'
  from paid p join inv i on i.invoice_id = p.invoice_id
 cross join lateral (values (i.contractor_user_id), (i.owner_id)) u(user_id)
union all
select %(org)s, f.id, 'batch.exported', 'batch.exported:' || b.id, 'AP export batch ' || b.number,
       '/batches/' || b.id, 'ap_export_batch', b.id::text, b.created_at, b.created_at + interval '1 hour'
  from batch b cross join person f where f.org_id = %(org)s and f.role = 'finance';

insert into notifications (org_id, user_id, event, title, body, url, dedupe_key, created_at, read_at)
select org_id, user_id, event, left(title, 300), '', url, key || ':' || user_id, at, read_at from told;

insert into email_messages (org_id, event, recipient_user_id, recipient, subject, html, text, status, dedupe_key,
                            entity_type, entity_id, created_at, updated_at)
select t.org_id, t.event, t.user_id, u.email, left(t.title, 300),
       '<p>' || t.title || '</p><p><a href="https://backoffice.example' || t.url || '">Open it</a></p>',
       t.title || E'\n\nhttps://backoffice.example' || t.url || E'\n', 'kept', t.key || ':' || t.user_id,
       t.entity_type, t.entity_id, t.at, t.at
  from told t join users u on u.id = t.user_id;

-- step: projects
-- Calls for proposals (issue 19): the large organization's projects in six categories, the newest open_projects of
-- them open (one in ten past its deadline, waiting for an award), the rest cancelled. Each has 3 proposals from
-- different contractors, of 2-4 milestones that add up to the price; three in four take invited contractors only
-- (the proposers, one more, and Contractor 0001 to every other open one). Contractor 0001, the bench's contractor
-- login, proposes on every fifth project. No awards: an awarded project needs its engagement made of the proposal,
-- and the engagements above stay as they are. No audit events of these either.
--
-- Unlike the steps above, these tables keep their triggers: the guards run (as the owner role app_role() is null,
-- so the role rules are skipped) and the checks at commit hold the rows (a waiting proposal is on an open project,
-- in its currency, by an invited contractor, its milestones add up to its price; a cancelled project has none
-- waiting). So they go in as the app writes them: opened, invited, proposed; then declined and cancelled. The guards
-- stamp their times with the load's now(); deadlines and due dates are spread as set here.
insert into project_categories (org_id, name, created_at)
select %(org)s, name, now() - interval '400 days'
  from unnest(array['Renovation', 'Fit-out', 'Electrical', 'Mechanical', 'Surveying', 'Grounds']) name;

create temp table proj on commit drop as
select gen_random_uuid() as id, j, j >= %(projects)s - %(open_projects)s as open, cat.id as category_id,
       o.id as owner_id,
       (array['Meeting rooms refit', 'Roof survey', 'Car park lighting', 'Boiler replacement', 'Reception fit-out',
              'Fire door upgrade', 'Canteen refurbishment', 'Solar panel feasibility', 'Lift modernisation',
              'Grounds maintenance'])[1 + mod(j, 10)] || ', site ' || (j + 1) as title,
       case when mod(j, 10) = 9 then 'EUR' else 'USD' end as currency,
       case when mod(j, 4) = 0 then 'all' else 'invited' end as audience,
       case when j < %(projects)s - %(open_projects)s then current_date - 30 - mod(j * 37, 700)
            when mod(j, 10) = 3 then current_date - 1 - mod(j, 7)
            else current_date + 1 + mod(j * 7, 45) end as deadline,
       case when mod(j, 3) = 0 then null else 1000000 * (5 + mod(j, 20)) end as budget_minor,
       least(3, %(contractors)s) as proposers,
       case when mod(j, 5) = 0 then 0 else mod(j * 7, %(contractors)s) end as base
  from generate_series(0, %(projects)s - 1) j
  join (select id, row_number() over (order by name) - 1 as r from project_categories where org_id = %(org)s) cat
    on cat.r = mod(j, 6)
  join person o on o.org_id = %(org)s and o.role = 'owner' and o.n = 1 + mod(j, %(owners)s);

-- Proposer i of a project is Contractor (base + i * step) with step = contractors / proposers: all different.
create temp table prop on commit drop as
select gen_random_uuid() as id, p.id as project_id, p.j, i, p.open, p.currency, c.id as contractor_id,
       c.user_id, 2 + mod(p.j + i, 3) as parts
  from proj p
 cross join generate_series(0, p.proposers - 1) i
  join firm c on c.org_id = %(org)s and c.n = mod(p.base + i * (%(contractors)s / p.proposers), %(contractors)s);

create temp table prop_ms on commit drop as
select q.id as proposal_id, q.contractor_id, s.seq,
       (array['Survey and design', 'Procurement and preparation', 'Main works', 'Commissioning and handover'])[s.seq]
         as title,
       100000 + mod(q.j * 7919 + q.i * 104729 + s.seq * 15485863, 900000) as amount,
       current_date + 20 * s.seq + mod(q.j + q.i, 10) as due_date
  from prop q cross join generate_series(1, q.parts) s(seq);

insert into projects (org_id, id, title, description, category_id, currency, budget_minor, deadline, billing_mode,
                      audience, owner_user_id, created_by)
select %(org)s, id, title, 'Scope of ' || title || ': as in the attached brief; site visits by appointment.',
       category_id, currency, budget_minor, deadline, 'milestone', audience, owner_id, owner_id
  from proj;

insert into project_invitations (org_id, project_id, contractor_id, invited_by)
select %(org)s, p.id, w.contractor_id, p.owner_id
  from proj p
  join (select project_id, contractor_id from prop
        union
        select p.id, c.id from proj p
          join firm c on c.org_id = %(org)s
                     and c.n in (mod(p.base + 1, %(contractors)s), case when p.open and mod(p.j, 2) = 0 then 0 end)
       ) w on w.project_id = p.id
 where p.audience = 'invited';

insert into proposals (org_id, id, project_id, contractor_id, price_minor, currency, timeline, note, submitted_by)
select %(org)s, q.id, q.project_id, q.contractor_id, t.price, q.currency, (4 + mod(q.j + q.i, 12)) || ' weeks from award',
       'Priced on the brief as issued; our references are on file.', q.user_id
  from prop q join (select proposal_id, sum(amount) as price from prop_ms group by proposal_id) t on t.proposal_id = q.id;

insert into proposal_milestones (org_id, proposal_id, contractor_id, seq, title, deliverable, amount_minor, due_date)
select %(org)s, proposal_id, contractor_id, seq, title, title || ': as described in the proposal.', amount, due_date
  from prop_ms;

update proposals q set status = 'declined', decided_by = p.owner_id, decided_at = now()
  from proj p
 where q.org_id = %(org)s and q.project_id = p.id and not p.open;

update projects x set status = 'cancelled', cancelled_by = p.owner_id, cancelled_at = now(),
                      cancel_reason = 'The budget for this site was withdrawn for the year.'
  from proj p
 where x.org_id = %(org)s and x.id = p.id and not p.open;

-- step: audit_trail
-- The large organization's audit trail, oldest first, as the app would have written it: who created what,
-- sent, accepted, submitted, approved, authorized, issued, exported and paid, and sign-ins up to the
-- requested number of events. dataset.py reads this in order and writes each event with its seq and hash
-- (the chain of sql/audit.sql), so `backoffice audit verify` accepts the trail.
with derived as (
  select now() - interval '800 days' as at, null::uuid as actor, 'system' as label, 'organization.created' as action,
         'organization' as entity_type, %(org)s::text as entity_id,
         jsonb_build_object('name', 'Large Customer Holdings') as data
  union all
  select now() - interval '790 days' + make_interval(secs => row_number() over (order by c.legal_name)), null,
         'system', 'contractor.created', 'contractor', c.id::text,
         jsonb_build_object('legal_name', c.legal_name, 'email', c.email)
    from contractors c where c.org_id = %(org)s
  union all
  select now() - interval '789 days' + make_interval(secs => row_number() over (order by u.email)), null, 'system',
         'member.created', 'membership', m.id::text, jsonb_build_object('role', m.role, 'email', u.email)
    from memberships m join users u on u.id = m.user_id where m.org_id = %(org)s
  union all
  select e.created_at, e.owner_id, null, 'engagement.created', 'engagement', e.id::text,
         jsonb_build_object('title', e.title, 'currency', e.currency, 'contractor_id', e.contractor_id,
                            'owner_user_id', e.owner_id)
    from eng e where e.org_id = %(org)s
  union all
  select e.sent_at, e.owner_id, null, 'engagement.work_request_sent', 'engagement', e.id::text,
         jsonb_build_object('from', 'draft', 'to', 'awaiting_acceptance')
    from eng e where e.org_id = %(org)s and e.sent_at is not null
  union all
  select e.responded_at, e.contractor_user_id, null, 'engagement.work_request_accepted', 'engagement', e.id::text,
         jsonb_build_object('from', 'awaiting_acceptance', 'to', 'active')
    from eng e where e.org_id = %(org)s and e.responded_at is not null
  union all
  select e.completed_at, e.owner_id, null, 'engagement.completed', 'engagement', e.id::text,
         jsonb_build_object('from', 'active', 'to', 'completed')
           || case when e.billing_mode = 'completion' then jsonb_build_object('by', 'final payment') else '{}' end
    from eng e where e.org_id = %(org)s and e.completed_at is not null
  union all
  select e.cancelled_at, e.owner_id, null, 'engagement.cancelled', 'engagement', e.id::text,
         jsonb_build_object('from', 'draft', 'to', 'cancelled', 'reason', 'The client postponed the project indefinitely.')
    from eng e where e.org_id = %(org)s and e.cancelled_at is not null
  union all
  select s.submitted_at, s.contractor_user_id, null, 'milestone.submitted', 'milestone', s.id::text,
         jsonb_build_object('revision', 1, 'links', jsonb_build_array('https://files.example.com/' || s.engagement_id || '/' || s.seq),
                            'files', coalesce(f.files, '[]'::jsonb))
    from sub s
    left join (select v.submission_id,
                      jsonb_agg(jsonb_build_object('name', v.file_name, 'size', octet_length(v.data), 'type', v.content_type,
                                                   'sha256', encode(sha256(v.data), 'hex')) order by v.position) as files
                 from evidence v group by v.submission_id) f on f.submission_id = s.submission_id
   where s.org_id = %(org)s
  union all
  select i.authorized_at, i.owner_id, null, 'invoice.authorized', 'invoice', i.invoice_id::text,
         jsonb_build_object('kind', 'milestone', 'currency', i.currency, 'invoice_number',
                            i.prefix || '-' || lpad(i.number::text, 6, '0'), 'gross_minor', i.amount,
                            'retainage_minor', i.retainage, 'net_minor', i.amount - i.retainage, 'fee_minor', 0,
                            'due_date', i.authorized_at::date + i.terms, 'review_id', i.review_id)
    from inv i where i.org_id = %(org)s and i.kind = 'milestone'
  union all
  -- Completion billing's (services/completion.py): the advance as the contractor's user accepted, a task invoice in
  -- the name of the user who raised it, the final payment in the last approver's.
  select i.authorized_at, coalesce(i.raised_by, case when i.kind = 'advance' then i.contractor_user_id else i.owner_id end),
         null, case i.kind when 'advance' then 'invoice.advance_authorized' when 'completion' then 'invoice.completion_raised'
                           else 'invoice.final_authorized' end, 'invoice', i.invoice_id::text,
         jsonb_build_object('invoice_number', i.prefix || '-' || lpad(i.number::text, 6, '0'), 'kind', i.kind,
                            'currency', i.currency, 'gross_minor', i.amount, 'retainage_minor', i.retainage,
                            'net_minor', i.amount - i.retainage, 'fee_minor', 0, 'total_minor', i.amount,
                            'due_date', i.authorized_at::date + i.terms, 'milestone_id', null)
           || case i.kind when 'advance' then jsonb_build_object('engagement', e.title, 'advance_bps', e.advance_bps,
                                                                  'confirmed_by', i.owner_id)
                          when 'completion' then jsonb_build_object('tasks', t.tasks)
                          else jsonb_build_object('engagement', e.title, 'contract_value_minor', e.contract_value_minor,
                                                  'billed_before_minor', e.contract_value_minor - i.amount, 'tasks', t.tasks)
              end
    from inv i
    join eng e on e.id = i.engagement_id
    left join (select invoice_id, jsonb_agg(jsonb_build_object('id', id, 'title', title, 'amount_minor', amount)
                                            order by seq) as tasks
                 from task_bill group by invoice_id) t on t.invoice_id = i.invoice_id
   where i.org_id = %(org)s and i.kind <> 'milestone'
  union all
  select r.reviewed_at + interval '1 microsecond', r.owner_id, null,
         case when r.disputed then 'milestone.disputed' else 'milestone.approved' end, 'milestone', r.id::text,
         jsonb_build_object('title', r.title, 'decision', case when r.disputed then 'dispute' else 'approve' end,
                            'reason', case when r.disputed then 'Please attach the signed inspection sheet for this milestone.' end,
                            'links', jsonb_build_array('https://files.example.com/' || r.engagement_id || '/' || r.seq),
                            'evidence', '[]'::jsonb)
    from rev r where r.org_id = %(org)s
  union all
  select d.issued_at, null, 'background job', 'document.issued', 'invoice', d.invoice_id::text,
         jsonb_build_object('document_id', d.id, 'filename', d.filename, 'sha256', d.sha256, 'size_bytes', d.size_bytes,
                            'transaction_id', d.transaction_id, 'kind', d.kind)
    from documents d where d.org_id = %(org)s
  union all
  select b.created_at, b.created_by, null, 'ap_export.created', 'ap_export_batch', b.id::text,
         jsonb_build_object('number', b.number, 'preset', b.preset, 'currency', b.currency, 'rows', b.row_count,
                            'total_minor', b.total_minor, 'sha256', b.sha256, 'size_bytes', b.size_bytes,
                            'selection', b.selection)
    from ap_export_batches b where b.org_id = %(org)s
  union all
  select b.voided_at, b.voided_by, null, 'ap_export.voided', 'ap_export_batch', b.id::text,
         jsonb_build_object('number', b.number, 'reason', b.void_reason, 'invoices_returned', b.row_count)
    from ap_export_batches b where b.org_id = %(org)s and b.status = 'voided'
  union all
  select p.recorded_at, p.recorded_by, null, 'payment.recorded', 'invoice', p.invoice_id::text,
         jsonb_build_object('batch', pd.batch_number, 'method', p.method, 'source', p.source, 'paid_at', p.paid_at,
                            'currency', p.currency, 'reference', p.reference, 'amount_minor', p.amount_minor)
    from payments p join paid pd on pd.payment_id = p.id
), members as (
  select array_agg(user_id order by user_id) as ids from memberships where org_id = %(org)s
), signed_in as (
  select now() - interval '760 days' * (1 - g / (n + 1)::float8) as at, m.ids[1 + mod(g * 7919, cardinality(m.ids))] as actor,
         null as label, 'auth.signed_in' as action, 'user' as entity_type,
         m.ids[1 + mod(g * 7919, cardinality(m.ids))]::text as entity_id, '{}'::jsonb as data
    from members m
   cross join (select greatest(0, %(audit_events)s - (select count(*) from derived)) as n) want
   cross join generate_series(1, want.n) g
)
select ev.at, to_char(ev.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_text, ev.actor,
       coalesce(u.email, ev.label) as label, ev.action, ev.entity_type, ev.entity_id, ev.data::text as data_text
  from (select * from derived union all select * from signed_in) ev
  left join users u on u.id = ev.actor
 order by ev.at, ev.action, ev.entity_id
