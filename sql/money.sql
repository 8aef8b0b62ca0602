-- Money: invoices, payments, AP export batches and the ledger.
-- Policies and grants: sql/rls_policies.sql; the ledger never changes for anyone: sql/append_only.sql.

set local check_function_bodies = off;

-- ---------------------------------------------------------------------------------------------
-- Money (DESIGN.md sections 3 and 4): invoices (payment authorizations), payments, AP export
-- batches and the ledger. The services compute every amount with backoffice.domain; these guards
-- recompute them from the engagement's terms and refuse a mismatch, whoever writes. Pay-once is in
-- the unique constraints of migration 0004.
-- ---------------------------------------------------------------------------------------------

-- The one rounding rule (money_percent_of) and an approval's amounts are in sql/rules.sql.

-- A text cell of an AP export file: empty is NULL (COPY writes it unquoted), and a value a spreadsheet
-- would run as a formula (= + - @, tab, CR first) gets a leading apostrophe.
create or replace function ap_csv_text(p_value text) returns text
language sql immutable parallel safe as $$  -- not SECURITY DEFINER; left inlinable
  select case when p_value ~ '^[=+@\t\r-]' then '''' || p_value else nullif(p_value, '') end
$$;
-- The AP export (services/ap_export, the web role) renders its cells with it; no job does, and PUBLIC
-- (the worker role with it) had it until revision 0011.
revoke all on function ap_csv_text(text) from public;
do $$
begin
  execute format('grant execute on function public.ap_csv_text(text) to %I', current_setting('backoffice.app_role'));
end
$$;

-- The next number of a per-organization counter. The row stays locked until the caller's transaction
-- ends, so numbers are gapless: a rolled-back transaction gives its number back.
create or replace function next_org_number(p_org uuid, p_counter text) returns bigint
language sql volatile security definer set search_path = pg_catalog, pg_temp as $$
  insert into public.org_counters as c (org_id, counter, last_value) values (p_org, p_counter, 1)
  on conflict (org_id, counter) do update set last_value = c.last_value + 1
  returning last_value
$$;
revoke all on function next_org_number(uuid, text) from public;

create or replace function invoices_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_engagement public.engagements;
  v_review public.reviews;
  v_milestone_amount bigint;
  v_released boolean;
  v_gross bigint;
  v_amounts record;
  v_broken text;
begin
  -- Tenancy first, before anything is read or locked (no person and not the owner role: refused too). A payment is
  -- authorized by a manager in their own name; under completion billing the contractor's user writes two kinds
  -- (sql/completion.sql): the advance, when it accepts the work request (authorized by whoever confirmed the advance
  -- when sending it, checked below), and an invoice for its approved tasks, raised in its own name.
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and new.org_id is distinct from public.app_org_id())
     or (v_role = 'contractor' and not (new.contractor_id = public.app_contractor_id()
                                        and (new.kind = 'advance' or (new.kind = 'completion' and new.raised_by = v_user))))
     or (v_role is not null and v_role <> 'contractor'
         and (not public.is_manager(v_role) or new.authorized_by is distinct from v_user or new.kind = 'completion')) then
    raise exception 'a payment is authorized by the engagement''s project owner or an admin, in their own name'
      using errcode = '42501';
  end if;
  -- Held until commit: approvals and the release of one engagement take turns (the release sums
  -- what the approvals withheld). Only the row's own organization and contractor are read or locked:
  -- another's engagement is not found, and its lock is never taken or waited for.
  select * into v_engagement from public.engagements e
   where e.id = new.engagement_id and e.org_id = new.org_id and e.contractor_id = new.contractor_id for update;
  if not found then
    raise exception 'engagement % not found', new.engagement_id using errcode = '23503';
  end if;
  if v_role is not null and v_role <> 'contractor' and not public.can_decide(v_role, v_user, v_engagement.owner_user_id) then
    raise exception 'only the engagement''s project owner or an admin authorizes its payments' using errcode = '42501';
  end if;
  if (new.kind = any (array['advance', 'completion', 'final']) and v_engagement.billing_mode <> 'completion')
     or (new.kind = 'milestone' and v_engagement.billing_mode <> 'milestone') then
    raise exception 'an engagement billed % is not paid by an invoice of kind %', v_engagement.billing_mode, new.kind
      using errcode = '23514';
  end if;
  if new.status not in ('approved', 'pending_approval')
     or num_nonnulls(new.batch_id, new.exported_at, new.paid_at, new.voided_at) > 0 then
    raise exception 'a new invoice starts approved, or awaiting approval' using errcode = '23514';
  end if;
  if new.currency is distinct from v_engagement.currency then
    raise exception 'an invoice is in its engagement''s currency (%)', v_engagement.currency using errcode = '23514';
  end if;
  v_released := exists (select 1 from public.invoices i
                         where i.org_id = new.org_id and i.engagement_id = new.engagement_id and i.kind = 'retainage_release'
                           and i.voided_at is null);
  if new.kind = 'milestone' then
    select * into v_review from public.reviews r
     where r.id = new.review_id and r.org_id = new.org_id and r.contractor_id = new.contractor_id;
    select m.amount_minor into v_milestone_amount from public.milestones m
     where m.id = new.milestone_id and m.org_id = new.org_id and m.contractor_id = new.contractor_id;
    if v_review.milestone_id is distinct from new.milestone_id
       or not (v_review.decision = 'approve' or (v_review.decision = 'partial' and v_review.partial_policy = 'split')) then
      raise exception 'a milestone invoice needs an approving review of that milestone' using errcode = '23514';
    end if;
    if exists (select 1 from public.submissions s, public.submissions r
                where r.id = v_review.submission_id and r.org_id = new.org_id and s.org_id = new.org_id
                  and s.milestone_id = r.milestone_id and s.revision > r.revision) then
      raise exception 'only the review of the latest revision authorizes payment' using errcode = '23514';
    end if;
    if new.authorized_by is distinct from v_review.reviewed_by then
      raise exception 'a payment is authorized by the person who approved the work' using errcode = '23514';
    end if;
    v_gross := coalesce(v_review.approved_amount_minor, v_review.milestone_amount_minor);
    if new.gross_minor is distinct from v_gross or v_milestone_amount is distinct from v_gross then
      raise exception 'the invoice''s gross is the approved amount (%)', v_gross using errcode = '23514';
    end if;
    -- Once the engagement's retainage is released, later approvals withhold none: the one release per
    -- engagement could never pay it back (DESIGN.md section 4, invariant 3).
    if new.retainage_bps is distinct from public.withheld_bps(v_engagement.retainage_bps, v_released)
       or new.fee_bps is distinct from v_engagement.service_fee_bps then
      raise exception 'an invoice withholds the engagement''s retainage and charges its service fee' using errcode = '23514';
    end if;
    new.issued_on := (v_review.reviewed_at at time zone 'UTC')::date;
  elsif new.kind = any (array['advance', 'completion', 'final']) then
    -- Completion billing (domain.completion): which tasks an invoice bills, and that they add up, is checked at
    -- commit (completion_invoice_checked, sql/completion.sql), once its invoice_tasks are in.
    perform public.completion_invoice_ok(new.org_id, new.engagement_id, new.kind, new.gross_minor, new.retainage_bps,
                                         new.fee_bps, new.authorized_by, v_released);
    new.issued_on := (now() at time zone 'UTC')::date;
  else
    if v_engagement.status <> 'completed' and new.release_reason is null then
      raise exception 'retainage is released once the engagement is completed, or earlier with a reason' using errcode = '23514';
    end if;
    -- An authorization awaiting approval may yet be voided: released now, its retainage would be paid twice over
    -- (invariant 3). The release waits for every decision (services/invoices.release_retainage says so first).
    if exists (select 1 from public.invoices i
                where i.org_id = new.org_id and i.engagement_id = new.engagement_id and i.kind <> 'retainage_release'
                  and i.status = 'pending_approval') then
      raise exception 'retainage is released once no payment of the engagement awaits approval' using errcode = '23514';
    end if;
    v_gross := (select coalesce(sum(i.retainage_minor), 0) from public.invoices i
                 where i.org_id = new.org_id and i.engagement_id = new.engagement_id and i.kind <> 'retainage_release'
                   and i.voided_at is null);
    if v_gross = 0 then
      raise exception 'this engagement holds no retainage to release' using errcode = '23514';
    end if;
    if new.gross_minor is distinct from v_gross or new.retainage_bps <> 0 or new.fee_bps <> 0 then
      raise exception 'a release pays the retainage held (%), with nothing withheld and no fee', v_gross using errcode = '23514';
    end if;
    new.issued_on := (now() at time zone 'UTC')::date;
  end if;
  -- What an approval withholds and charges: domain.invoices.milestone_amounts, through its twin in
  -- sql/rules.sql (a release is the same arithmetic with nothing withheld and no fee). Net and total
  -- follow from these by the table's CHECK invoices_amounts_add_up.
  v_amounts := public.milestone_amounts(new.gross_minor, new.retainage_bps, new.fee_bps);
  if (new.retainage_minor, new.fee_minor) is distinct from (v_amounts.retainage_minor, v_amounts.fee_minor) then
    raise exception 'retainage and fee are round_half_up(gross × bps / 10000)'
      using errcode = '23514';
  end if;
  -- An approval policy (issue 18): at or above a live policy's amount the authorization awaits its steps
  -- (domain.approvals.applicable_policy; invoices_approvals_start copies them once the row is in). A contractor's
  -- user may not read the organization's policies: what it writes (an advance, a task invoice) starts under the one
  -- that applies, set here (services/completion.py reads the row back).
  if v_role = 'contractor' then
    new.approval_policy_id := public.applicable_approval_policy(new.org_id, new.currency, new.gross_minor);
    new.status := case when new.approval_policy_id is null then 'approved' else 'pending_approval' end;
  end if;
  if (new.status, new.approval_policy_id) is distinct from
     (case when public.applicable_approval_policy(new.org_id, new.currency, new.gross_minor) is null
           then 'approved' else 'pending_approval' end,
      public.applicable_approval_policy(new.org_id, new.currency, new.gross_minor)) then
    raise exception 'the organization''s approval policies changed; reload the page and decide again' using errcode = '40001';
  end if;
  new.due_date := new.issued_on + v_engagement.payment_terms_days;
  new.number := public.next_org_number(new.org_id, 'invoice');
  new.invoice_number := (select o.invoice_prefix from public.organizations o where o.id = new.org_id)
                        || '-' || lpad(new.number::text, greatest(6, length(new.number::text)), '0');
  -- (Six digits at least, and every digit past a millionth invoice: lpad alone cuts a longer text to six, so
  -- invoice 1,000,000 would have repeated 100,000's number.)
  new.authorized_at := now();
  new.updated_at := now();
  -- What an invoice's own columns must hold, checked once, here: they never change afterwards
  -- (invoices_move_guard). They were CHECK constraints until revision 0018, which PostgreSQL re-evaluated on
  -- every status move whatever changed (73 ms of an AP export of 100,000 invoices). Same expressions, names
  -- and error as those constraints (migrations/versions/0018_invoice_checks_once.py lists them; a test holds
  -- the two lists equal). The constraints over what a move changes are still the table's.
  v_broken := case
    when not (new.kind = any (array['milestone', 'retainage_release', 'advance', 'completion', 'final']))
      then 'invoices_kind_check'
    when not (new.number > 0) then 'invoices_number_check'
    when not (length(btrim(new.description)) between 1 and 500) then 'invoices_description_check'
    when not (new.currency ~ '^[A-Z]{3}$') then 'invoices_currency_check'
    when not (new.gross_minor > 0) then 'invoices_gross_minor_check'
    when not (new.retainage_bps between 0 and 10000) then 'invoices_retainage_bps_check'
    when not (new.retainage_minor >= 0) then 'invoices_retainage_minor_check'
    when not (new.net_minor >= 0) then 'invoices_net_minor_check'
    when not (new.fee_bps between 0 and 10000) then 'invoices_fee_bps_check'
    when not (new.fee_minor >= 0) then 'invoices_fee_minor_check'
    when not (new.release_reason is null or length(btrim(new.release_reason)) between 1 and 2000)
      then 'invoices_release_reason_check'
    when not (new.net_minor = new.gross_minor - new.retainage_minor and new.total_minor = new.gross_minor + new.fee_minor)
      then 'invoices_amounts_add_up'
    when not (new.due_date >= new.issued_on) then 'invoices_check'
    when not ((new.kind = 'milestone' and new.milestone_id is not null and new.review_id is not null
               and new.release_reason is null and new.raised_by is null)
              or (new.kind = 'retainage_release' and new.milestone_id is null and new.review_id is null
                  and new.retainage_minor = 0 and new.fee_minor = 0 and new.raised_by is null)
              or (new.kind = 'advance' and new.milestone_id is null and new.review_id is null
                  and new.retainage_minor = 0 and new.fee_minor = 0 and new.release_reason is null and new.raised_by is null)
              or (new.kind = 'completion' and new.milestone_id is null and new.review_id is null
                  and new.release_reason is null and new.raised_by is not null)
              or (new.kind = 'final' and new.milestone_id is null and new.review_id is null
                  and new.release_reason is null and new.raised_by is null))
      then 'invoices_kind_shape'
  end;
  if v_broken is not null then
    raise exception 'new row for relation "invoices" violates check constraint "%"', v_broken
      using errcode = '23514', constraint = v_broken, table = 'invoices', schema = 'public';
  end if;
  return new;
end
$$;

-- An invoice's amounts, dates and parties never change (the app role may update only its status
-- columns); its status moves approved -> exported (into a live batch written in this transaction)
-- -> approved (the batch voided) and approved/exported -> paid (with its payment record).
-- Not SECURITY DEFINER and no SET clause: it runs once per row it fires for, and only finance and admins
-- update invoices, who may read the batches and payments it checks (under their policies, and only in
-- the invoice's own organization). It fires for every update but an AP export's own moves: those are
-- checked per statement (invoices_exported_check and the trigger's WHEN clause, below).
drop function if exists invoices_move_guard() cascade;
create function invoices_move_guard() returns trigger
language plpgsql as $$
begin
  if (new.id, new.org_id, new.contractor_id, new.engagement_id, new.kind, new.milestone_id, new.review_id, new.number,
      new.invoice_number, new.description, new.currency, new.gross_minor, new.retainage_bps, new.retainage_minor,
      new.net_minor, new.fee_bps, new.fee_minor, new.total_minor, new.issued_on, new.due_date, new.authorized_by,
      new.authorized_at, new.release_reason, new.approval_policy_id, new.raised_by)
     is distinct from
     (old.id, old.org_id, old.contractor_id, old.engagement_id, old.kind, old.milestone_id, old.review_id, old.number,
      old.invoice_number, old.description, old.currency, old.gross_minor, old.retainage_bps, old.retainage_minor,
      old.net_minor, old.fee_bps, old.fee_minor, old.total_minor, old.issued_on, old.due_date, old.authorized_by,
      old.authorized_at, old.release_reason, old.approval_policy_id, old.raised_by) then
    raise exception 'an invoice''s amounts, dates and parties never change; only its payment status moves' using errcode = '23514';
  end if;
  -- Which moves exist: domain.invoices.MOVES, through its twin in sql/rules.sql. Each one's own condition
  -- follows (a live batch, a voided batch, a payment record).
  if new.status is distinct from old.status and not public.invoice_move_allowed(old.status, new.status) then
    raise exception 'an invoice cannot go from % to %', old.status, new.status using errcode = '23514';
  end if;
  if new.voided_at is distinct from old.voided_at and not (old.status = 'pending_approval' and new.status = 'void') then
    raise exception 'an invoice is voided by its move to void' using errcode = '23514';
  end if;
  -- Nothing is exported or paid while a hold stands on the invoice or its contractor (DESIGN.md section 4, invariant
  -- 7); a payment rail's transfer, made before the hold, is still recorded (exported in no batch -> paid).
  if (old.status || '>' || new.status in ('approved>exported', 'approved>paid')
      or (old.status || '>' || new.status = 'exported>paid' and old.batch_id is not null))
     and public.invoice_held(new.org_id, new.id, new.contractor_id) then
    raise exception 'invoice % is on hold; release the hold before it is exported or paid', new.invoice_number
      using errcode = '23514';
  end if;
  case old.status || '>' || new.status
    when 'pending_approval>approved' then
      -- Its approval policy's last step approved it (invoice_approvals_apply, sql/controls.sql).
      if exists (select 1 from public.invoice_approvals a
                  where a.org_id = new.org_id and a.invoice_id = new.id and a.status <> 'approved')
         or not exists (select 1 from public.invoice_approvals a where a.org_id = new.org_id and a.invoice_id = new.id) then
        raise exception 'invoice % is approved when every step of its approval policy has approved it', new.invoice_number
          using errcode = '23514';
      end if;
    when 'pending_approval>void' then
      if not exists (select 1 from public.invoice_approvals a
                      where a.org_id = new.org_id and a.invoice_id = new.id and a.status = 'rejected') then
        raise exception 'an invoice awaiting approval is voided by a rejected step' using errcode = '23514';
      end if;
      new.voided_at := now();
    when 'approved>exported' then
      -- Into a live AP export batch, or handed to a payment rail: a payout attempt in flight, made in this
      -- transaction (sql/rails.sql). Either, never both: the rail's attempt needs an invoice with no batch.
      if new.batch_id is null then
        if not exists (select 1 from public.payout_attempts a
                        where a.org_id = new.org_id and a.invoice_id = new.id and a.status = 'pending'
                          and a.requested_at = now()) then
          raise exception 'an invoice is handed to a payment rail with a payout attempt made in the same transaction'
            using errcode = '23514';
        end if;
      elsif not exists (select 1 from public.ap_export_batches b
                      where b.id = new.batch_id and b.org_id = new.org_id and b.status = 'live' and b.created_at = now()) then
        raise exception 'an invoice is exported into a live batch written in the same transaction' using errcode = '23514';
      end if;
      new.exported_at := now();
    when 'exported>approved' then
      if new.batch_id is not null or not exists (select 1 from public.ap_export_batches b
                                                  where b.id = old.batch_id and b.org_id = old.org_id and b.status = 'voided') then
        raise exception 'an exported invoice returns to approved only when its batch is voided' using errcode = '23514';
      end if;
      new.exported_at := null;
    when 'approved>paid', 'exported>paid' then
      if (new.batch_id, new.exported_at) is distinct from (old.batch_id, old.exported_at)
         or not exists (select 1 from public.payments p
                         where p.org_id = new.org_id and p.invoice_id = new.id and p.paid_at = new.paid_at
                           and p.reversed_at is null) then
        raise exception 'an invoice is paid with its payment record' using errcode = '23514';
      end if;
    when 'exported>on_hold' then
      -- A payment rail refused it: its attempt was closed as refused in this transaction.
      if old.batch_id is not null or new.batch_id is not null
         or not exists (select 1 from public.payout_attempts a
                         where a.org_id = new.org_id and a.invoice_id = new.id and a.status = 'refused'
                           and a.finished_at = now()) then
        raise exception 'an invoice goes on hold from a payment rail only when the rail refused its attempt'
          using errcode = '23514';
      end if;
      new.exported_at := null;
    when 'paid>on_hold' then
      -- A payment rail reversed its payment, in this transaction: no payment of it stands any more.
      if new.batch_id is distinct from old.batch_id
         or exists (select 1 from public.payments p
                     where p.org_id = new.org_id and p.invoice_id = new.id and p.reversed_at is null)
         or not exists (select 1 from public.payments p
                         where p.org_id = new.org_id and p.invoice_id = new.id and p.reversed_at = now()) then
        raise exception 'a paid invoice goes on hold only when its payment was reversed' using errcode = '23514';
      end if;
      new.paid_at := null;
      new.exported_at := null;
    when 'on_hold>approved' then
      -- Finance releases a hold, in its own name (the worker, no person, never does: app_membership()).
      if public.app_role() is not null and public.app_user_id() is null then
        raise exception 'a hold is released by finance or an admin' using errcode = '42501';
      end if;
      if (new.batch_id, new.exported_at, new.paid_at) is distinct from (null, null, null) then
        raise exception 'a released invoice is authorized again, in no batch and unpaid' using errcode = '23514';
      end if;
    else
      if (new.batch_id, new.exported_at, new.paid_at) is distinct from (old.batch_id, old.exported_at, old.paid_at) then
        raise exception 'an invoice''s batch and payment change only with its status' using errcode = '23514';
      end if;
  end case;
  new.updated_at := now();
  return new;
end
$$;

-- An AP export moves a whole batch of invoices in one UPDATE (services/ap_export). Asking per row whether
-- the batch is live cost 37 µs a row under the caller's policies: 3.7 s of a 4.3 s export of 100,000
-- invoices (bench/ap_export.py). So a row whose update is exactly an export's move (approved -> exported,
-- exported_at now(), nothing else changed: the WHEN clause of invoices_move_guard's trigger below, an
-- expression the executor evaluates with no PL/pgSQL call) skips the per-row guard, and this checks those rows
-- once per statement, from the statement's new rows: each names a live batch of its own organization,
-- written in this transaction. A row exported in this transaction by the per-row guard is checked again,
-- which costs nothing more; a row exported in an earlier one has an earlier exported_at. As the caller, like
-- invoices_move_guard: finance and admins see their organization's batches, and a batch they cannot see
-- is no batch to export into.
create or replace function invoices_exported_check() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if exists (select 1 from moved n where n.status = 'exported' and n.exported_at = now()) then
    -- The WHEN clause names the move; which moves exist is still domain.invoices.MOVES.
    if not public.invoice_move_allowed('approved', 'exported') then
      raise exception 'an invoice cannot go from approved to exported' using errcode = '23514';
    end if;
    -- Nothing held is exported (invoices_move_guard says the same of one row); holds are few, so this asks them.
    if exists (select 1 from public.holds h
                where h.released_at is null
                  and exists (select 1 from moved n
                               where n.status = 'exported' and n.exported_at = now() and n.org_id = h.org_id
                                 and (n.id = h.invoice_id or n.contractor_id = h.contractor_id))) then
      raise exception 'an invoice on hold, or of a contractor on hold, is not exported' using errcode = '23514';
    end if;
    -- With no batch, handed to a payment rail: a payout attempt made in this transaction (sql/rails.sql). One
    -- pass over the moved rows for both (an export's 100,000); which one failed is asked only on the way out.
    if exists (select 1 from moved n
                where n.status = 'exported' and n.exported_at = now()
                  and case when n.batch_id is null
                        then not exists (select 1 from public.payout_attempts a
                                          where a.org_id = n.org_id and a.invoice_id = n.id and a.status = 'pending'
                                            and a.requested_at = now())
                        else not exists (select 1 from public.ap_export_batches b
                                          where b.id = n.batch_id and b.org_id = n.org_id and b.status = 'live'
                                            and b.created_at = now()) end) then
      if exists (select 1 from moved n
                  where n.status = 'exported' and n.exported_at = now() and n.batch_id is null
                    and not exists (select 1 from public.payout_attempts a
                                     where a.org_id = n.org_id and a.invoice_id = n.id and a.status = 'pending'
                                       and a.requested_at = now())) then
        raise exception 'an invoice is handed to a payment rail with a payout attempt made in the same transaction'
          using errcode = '23514';
      end if;
      raise exception 'an invoice is exported into a live batch written in the same transaction' using errcode = '23514';
    end if;
  end if;
  return null;
end
$$;

-- The derived totals pages read instead of aggregating every invoice (revision 0014; DESIGN.md section 4 keeps
-- the invoices the record): invoice_totals (count and net per status, currency and due date: the payment
-- queue's totals), ap_batch_paid (paid invoices per batch: the batches list), retainage_totals (withheld
-- and released per engagement: the retainage report) and contractor_retainage_totals (the same per contractor
-- and currency: the report's summary, revision 0020). Applied per statement from its transition tables,
-- so an export of 100,000 invoices moves a few hundred total rows once, not 100,000 times. Rows are
-- upserted in key order, so two statements touching the same totals lock them in the same order. The
-- owner's (SECURITY DEFINER): nobody else writes these tables. tests/integration/test_derived_totals.py
-- recomputes each from the invoices and compares.
create or replace function invoices_totals_apply() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  -- Each transition table is summed on its own (+ for the rows a statement added, - for those it removed),
  -- then the sums are netted: grouping 100,000 rows twice is cheaper than copying 200,000 into one delta first
  -- (an export's UPDATE). A transition table exists only for the events its trigger names, hence the text;
  -- EXECUTE sees the trigger's transition tables as well.
  v_queue text := case tg_op
    when 'INSERT' then 'select org_id, status, currency, due_date, count(*) as n, sum(net_minor) as s from added group by 1, 2, 3, 4'
    when 'DELETE' then 'select org_id, status, currency, due_date, -count(*), -sum(net_minor) from removed group by 1, 2, 3, 4'
    else 'select org_id, status, currency, due_date, count(*) as n, sum(net_minor) as s from added group by 1, 2, 3, 4
          union all select org_id, status, currency, due_date, -count(*), -sum(net_minor) from removed group by 1, 2, 3, 4' end;
  v_paid text := case tg_op
    when 'INSERT' then 'select org_id, batch_id, count(*) as n from added where status = ''paid'' and batch_id is not null group by 1, 2'
    when 'DELETE' then 'select org_id, batch_id, -count(*) from removed where status = ''paid'' and batch_id is not null group by 1, 2'
    else 'select org_id, batch_id, count(*) as n from added where status = ''paid'' and batch_id is not null group by 1, 2
          union all select org_id, batch_id, -count(*) from removed where status = ''paid'' and batch_id is not null group by 1, 2' end;
begin
  -- An insert (an approval's invoice, a release) adds its new rows to each total with static statements, whose
  -- plans PL/pgSQL keeps for the session: EXECUTE planned four statements anew on every approval (about 0.3 ms
  -- of one, bench/approve.py). The same sums as the general path below, which keeps updates and deletes.
  if tg_op = 'INSERT' then
    insert into public.invoice_totals as t (org_id, status, currency, due_date, invoices, net_minor)
    select org_id, status, currency, due_date, count(*), sum(net_minor) from added group by 1, 2, 3, 4 order by 1, 2, 3, 4
    on conflict (org_id, status, currency, due_date)
    do update set invoices = t.invoices + excluded.invoices, net_minor = t.net_minor + excluded.net_minor;
    insert into public.ap_batch_paid as t (org_id, batch_id, invoices)
    select org_id, batch_id, count(*) from added where status = 'paid' and batch_id is not null
     group by 1, 2 order by 1, 2
    on conflict (org_id, batch_id) do update set invoices = t.invoices + excluded.invoices;
    insert into public.retainage_totals as t (org_id, contractor_id, engagement_id, currency, withheld_minor, released_minor)
    select org_id, contractor_id, engagement_id, min(currency),
           coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'), 0),
           coalesce(sum(gross_minor) filter (where kind = 'retainage_release'), 0)
      from added group by 1, 2, 3 order by 1, 2, 3
    on conflict (org_id, engagement_id)
    do update set withheld_minor = t.withheld_minor + excluded.withheld_minor,
                  released_minor = t.released_minor + excluded.released_minor;
    insert into public.contractor_retainage_totals as t (org_id, contractor_id, currency, withheld_minor, released_minor)
    select org_id, contractor_id, currency,
           coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'), 0),
           coalesce(sum(gross_minor) filter (where kind = 'retainage_release'), 0)
      from added group by 1, 2, 3 order by 1, 2, 3
    on conflict (org_id, contractor_id, currency)
    do update set withheld_minor = t.withheld_minor + excluded.withheld_minor,
                  released_minor = t.released_minor + excluded.released_minor;
    return null;
  end if;
  -- An AP export's own UPDATE (every row approved -> exported, exported_at now(): the move invoices_exported_check
  -- checks per statement, the only one that sets exported_at) moves its rows from the approved totals to the
  -- exported ones: read from its new rows alone, once.
  if tg_op = 'UPDATE' and not exists (select 1 from added where not (status = 'exported' and exported_at = now())) then
    insert into public.invoice_totals as t (org_id, status, currency, due_date, invoices, net_minor)
    select a.org_id, s.status, a.currency, a.due_date, s.sign * a.n, s.sign * a.net
      from (select org_id, currency, due_date, count(*) as n, sum(net_minor) as net from added group by 1, 2, 3) a
      cross join (values ('approved', -1), ('exported', 1)) s(status, sign)
     order by 1, 2, 3, 4
    on conflict (org_id, status, currency, due_date)
    do update set invoices = t.invoices + excluded.invoices, net_minor = t.net_minor + excluded.net_minor;
    return null;
  end if;
  execute format($q$
    insert into public.invoice_totals as t (org_id, status, currency, due_date, invoices, net_minor)
    select org_id, status, currency, due_date, sum(n), sum(s) from (%s) d
     group by 1, 2, 3, 4 having sum(n) <> 0 or sum(s) <> 0 order by 1, 2, 3, 4
    on conflict (org_id, status, currency, due_date)
    do update set invoices = t.invoices + excluded.invoices, net_minor = t.net_minor + excluded.net_minor$q$, v_queue);
  execute format($q$
    insert into public.ap_batch_paid as t (org_id, batch_id, invoices)
    select org_id, batch_id, sum(n) from (%s) d group by 1, 2 having sum(n) <> 0 order by 1, 2
    on conflict (org_id, batch_id) do update set invoices = t.invoices + excluded.invoices$q$, v_paid);
  -- An update never changes an amount (invoices_move_guard; an export's WHEN clause): no retainage moves, except
  -- that a voided authorization (a rejected approval step) no longer withholds or releases any.
  if tg_op = 'UPDATE' and exists (select 1 from added where voided_at is not null) then
    insert into public.retainage_totals as t (org_id, contractor_id, engagement_id, currency, withheld_minor,
                                              released_minor)
    select a.org_id, a.contractor_id, a.engagement_id, min(a.currency),
           -coalesce(sum(a.retainage_minor) filter (where a.kind <> 'retainage_release'), 0),
           -coalesce(sum(a.gross_minor) filter (where a.kind = 'retainage_release'), 0)
      from added a join removed r on r.org_id = a.org_id and r.id = a.id and r.voided_at is null
     where a.voided_at is not null group by 1, 2, 3 order by 1, 2, 3
    on conflict (org_id, engagement_id)
    do update set withheld_minor = t.withheld_minor + excluded.withheld_minor,
                  released_minor = t.released_minor + excluded.released_minor;
    insert into public.contractor_retainage_totals as t (org_id, contractor_id, currency, withheld_minor, released_minor)
    select a.org_id, a.contractor_id, a.currency,
           -coalesce(sum(a.retainage_minor) filter (where a.kind <> 'retainage_release'), 0),
           -coalesce(sum(a.gross_minor) filter (where a.kind = 'retainage_release'), 0)
      from added a join removed r on r.org_id = a.org_id and r.id = a.id and r.voided_at is null
     where a.voided_at is not null group by 1, 2, 3 order by 1, 2, 3
    on conflict (org_id, contractor_id, currency)
    do update set withheld_minor = t.withheld_minor + excluded.withheld_minor,
                  released_minor = t.released_minor + excluded.released_minor;
  end if;
  if tg_op <> 'UPDATE' then
    execute format($q$
      insert into public.retainage_totals as t (org_id, contractor_id, engagement_id, currency, withheld_minor,
                                                released_minor)
      select org_id, contractor_id, engagement_id, min(currency),
             %1$s coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'), 0),
             %1$s coalesce(sum(gross_minor) filter (where kind = 'retainage_release'), 0)
        from %2$I group by 1, 2, 3 order by 1, 2, 3
      on conflict (org_id, engagement_id)
      do update set withheld_minor = t.withheld_minor + excluded.withheld_minor,
                    released_minor = t.released_minor + excluded.released_minor$q$,
      case tg_op when 'INSERT' then '' else '-' end, case tg_op when 'INSERT' then 'added' else 'removed' end);
    -- The same per contractor and currency (revision 0020), what the report's "held per contractor" reads.
    execute format($q$
      insert into public.contractor_retainage_totals as t (org_id, contractor_id, currency, withheld_minor,
                                                           released_minor)
      select org_id, contractor_id, currency,
             %1$s coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'), 0),
             %1$s coalesce(sum(gross_minor) filter (where kind = 'retainage_release'), 0)
        from %2$I group by 1, 2, 3 order by 1, 2, 3
      on conflict (org_id, contractor_id, currency)
      do update set withheld_minor = t.withheld_minor + excluded.withheld_minor,
                    released_minor = t.released_minor + excluded.released_minor$q$,
      case tg_op when 'INSERT' then '' else '-' end, case tg_op when 'INSERT' then 'added' else 'removed' end);
  end if;
  return null;
end
$$;
revoke all on function invoices_totals_apply() from public;

-- The derived totals recomputed from the invoices, whole: what revision 0014 filled them with, and what a bulk
-- load that switched the invoices' triggers off (bench/dataset_build.py) runs after it. The owner role's only.
create or replace function rebuild_invoice_totals() returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp as $$
declare
  -- A voided authorization withholds and releases nothing (revision 0027 adds voided_at; earlier revisions run
  -- this too, before it exists). Its engagement keeps its row, at zero, as the triggers keep it.
  v_live text := case when exists (select 1 from pg_attribute a
                                    where a.attrelid = 'public.invoices'::regclass and a.attname = 'voided_at'
                                      and not a.attisdropped)
                      then ' and voided_at is null' else '' end;
begin
  delete from public.invoice_totals;
  delete from public.ap_batch_paid;
  delete from public.retainage_totals;
  insert into public.invoice_totals (org_id, status, currency, due_date, invoices, net_minor)
  select org_id, status, currency, due_date, count(*), sum(net_minor) from public.invoices group by 1, 2, 3, 4;
  insert into public.ap_batch_paid (org_id, batch_id, invoices)
  select org_id, batch_id, count(*) from public.invoices where status = 'paid' and batch_id is not null group by 1, 2;
  execute format($q$
    insert into public.retainage_totals (org_id, contractor_id, engagement_id, currency, withheld_minor, released_minor)
    select org_id, contractor_id, engagement_id, min(currency),
           coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'%1$s), 0),
           coalesce(sum(gross_minor) filter (where kind = 'retainage_release'%1$s), 0)
      from public.invoices group by 1, 2, 3$q$, v_live);
  -- Revision 0014 runs this too, before 0020 adds the per-contractor table.
  if to_regclass('public.contractor_retainage_totals') is not null then
    delete from public.contractor_retainage_totals;
    execute format($q$
      insert into public.contractor_retainage_totals (org_id, contractor_id, currency, withheld_minor, released_minor)
      select org_id, contractor_id, currency,
             coalesce(sum(retainage_minor) filter (where kind <> 'retainage_release'%1$s), 0),
             coalesce(sum(gross_minor) filter (where kind = 'retainage_release'%1$s), 0)
        from public.invoices group by 1, 2, 3$q$, v_live);
  end if;
end
$$;
revoke all on function rebuild_invoice_totals() from public;

create or replace function payments_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_invoice public.invoices;
begin
  -- Tenancy first, before anything is read or locked (no person and not the owner role: refused too). The
  -- worker (an admin's reach, no person: app_membership()) records only a payment rail's payments, in the name
  -- of whoever asked for them (the payout attempt's requested_by, checked below).
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and (v_role not in ('admin', 'finance') or new.org_id is distinct from public.app_org_id()
                                 or new.recorded_by is distinct from coalesce(public.app_user_id(), new.recorded_by)
                                 or (public.app_user_id() is null and new.source <> 'stripe'))) then
    raise exception 'payments are recorded by finance or an admin, in their own name' using errcode = '42501';
  end if;
  -- And a person never records a rail's payment: only the worker, with what the rail answered.
  if v_role is not null and public.app_user_id() is not null and new.source = 'stripe' then
    raise exception 'a Stripe payment is recorded by the worker that made its transfer, never by hand'
      using errcode = '42501';
  end if;
  if new.reversed_at is not null or new.reversal_reference is not null then
    raise exception 'a payment is recorded standing; a rail''s reversal comes later' using errcode = '23514';
  end if;
  -- Only the row's own organization and contractor are read or locked: another's invoice is not found,
  -- and its lock is never taken or waited for.
  select * into v_invoice from public.invoices i
   where i.id = new.invoice_id and i.org_id = new.org_id and i.contractor_id = new.contractor_id for update;
  if not found then
    raise exception 'invoice % not found', new.invoice_id using errcode = '23503';
  end if;
  if v_invoice.status not in ('approved', 'exported') then
    raise exception 'invoice % is %; only an approved or exported invoice is paid', v_invoice.invoice_number, v_invoice.status
      using errcode = '23514';
  end if;
  if (new.amount_minor, new.currency) is distinct from (v_invoice.net_minor, v_invoice.currency) then
    raise exception 'a payment is the invoice''s net payable (% %)', v_invoice.net_minor, v_invoice.currency using errcode = '23514';
  end if;
  if new.batch_id is not null and new.batch_id is distinct from v_invoice.batch_id then
    raise exception 'a batch payment is for an invoice in that batch' using errcode = '23514';
  end if;
  -- Pay once across every rail (DESIGN.md section 4, invariant 8): an invoice handed to a payment rail (exported,
  -- no batch) is paid by that rail's attempt and by nothing else; the rail pays only what it was handed.
  if v_invoice.status = 'exported' and v_invoice.batch_id is null then
    if new.source <> 'stripe' then
      raise exception 'invoice % is being paid through Stripe; it cannot be recorded as paid otherwise',
        v_invoice.invoice_number using errcode = '23514';
    end if;
  elsif new.source = 'stripe' then
    raise exception 'a Stripe payment is for an invoice handed to Stripe' using errcode = '23514';
  end if;
  if new.source = 'stripe' and not exists (
      select 1 from public.payout_attempts a
       where a.org_id = new.org_id and a.invoice_id = new.invoice_id and a.status = 'pending'
         and a.requested_by = new.recorded_by and a.amount_minor = new.amount_minor) then
    raise exception 'a Stripe payment closes the invoice''s payout attempt, in the name of whoever asked for it'
      using errcode = '23514';
  end if;
  if new.paid_at < v_invoice.issued_on or new.paid_at > (now() at time zone 'UTC')::date + 1 then
    raise exception 'a payment is dated between its authorization (%) and today', v_invoice.issued_on using errcode = '23514';
  end if;
  -- (A rail's payment was held to it when it was sent, payout_attempts_guard: the transfer Stripe has made since is
  -- recorded whatever the setting says now, or it would be stranded unrecorded.)
  if new.recorded_by = any (public.invoice_approvers(new.org_id, new.invoice_id)) and new.source <> 'stripe'
     and (select o.segregation_of_duties from public.organizations o where o.id = new.org_id) then
    raise exception 'segregation of duties: whoever approved a payment cannot record it' using errcode = '42501';
  end if;
  new.recorded_at := now();
  return new;
end
$$;

-- A payment changes once, and only so: a payment rail reversed it (transfer.reversed, applied by the worker:
-- services/stripe_payouts). Nothing else of it ever changes; a reversed payment no longer stands, so the
-- invoice may be paid again (payments_one_per_invoice counts the standing ones).
create or replace function payments_reversal_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
begin
  if (v_role is null and not public.session_bypasses_rls())
     or (v_role is not null and (public.app_user_id() is not null or new.org_id is distinct from public.app_org_id())) then
    raise exception 'a payment is reversed by its payment rail (the worker applying the rail''s event)' using errcode = '42501';
  end if;
  if old.reversed_at is not null or new.reversed_at is null or old.source <> 'stripe'
     or (new.id, new.org_id, new.contractor_id, new.invoice_id, new.amount_minor, new.currency, new.paid_at, new.reference,
         new.method, new.source, new.batch_id, new.recorded_by, new.recorded_at, new.run_id)
        is distinct from
        (old.id, old.org_id, old.contractor_id, old.invoice_id, old.amount_minor, old.currency, old.paid_at, old.reference,
         old.method, old.source, old.batch_id, old.recorded_by, old.recorded_at, old.run_id) then
    raise exception 'a payment never changes; a rail''s payment is reversed once, and only that is written'
      using errcode = '23514';
  end if;
  new.reversed_at := now();
  return new;
end
$$;

revoke all on function payments_reversal_guard() from public;

-- At commit: a payment's invoice is paid, on the payment's date.
create or replace function payments_paid_invoice() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if not exists (select 1 from public.invoices i
                  where i.id = new.invoice_id and i.org_id = new.org_id and i.status = 'paid' and i.paid_at = new.paid_at) then
    raise exception 'a payment marks its invoice paid in the same transaction' using errcode = '23514';
  end if;
  return null;
end
$$;

create or replace function ap_export_batches_guard() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_role text := public.app_role();
  v_user uuid := public.app_user_id();
  v_new public.ap_export_batches;
  v_old public.ap_export_batches;
begin
  if tg_op = 'INSERT' then
    -- Tenancy first: next_org_number() below locks the organization's counter (no person and not the
    -- owner role: refused too).
    if (v_role is null and not public.session_bypasses_rls())
       or (v_role is not null and (v_role not in ('admin', 'finance') or new.org_id is distinct from public.app_org_id()
                                   or new.created_by is distinct from v_user)) then
      raise exception 'AP export batches are created by finance or an admin, in their own name' using errcode = '42501';
    end if;
    if new.status <> 'live' or num_nonnulls(new.voided_by, new.voided_at, new.void_reason) > 0 then
      raise exception 'a new batch starts live' using errcode = '23514';
    end if;
    if num_nonnulls(new.size_bytes, new.sha256, new.row_count, new.total_minor, new.invoice_ids) > 0 then
      raise exception 'a new batch is sealed once its file is written' using errcode = '23514';
    end if;
    new.number := public.next_org_number(new.org_id, 'ap_batch');
    new.created_at := now();
    return new;
  end if;
  -- Every other column stays as it was: the rows are compared whole with the columns that may change
  -- blanked on both sides (to_jsonb() of both rows did this before: about 10 ms more for the 100,000 ids
  -- of a large seal).
  v_new := new;
  v_old := old;
  -- Sealing: once, in the transaction that created the batch, nothing else changing.
  if old.sha256 is null then
    v_new.size_bytes := null; v_new.sha256 := null; v_new.row_count := null; v_new.total_minor := null;
    v_new.invoice_ids := null;
    if old.created_at <> now() or new.sha256 is null or v_new is distinct from v_old then
      raise exception 'a batch is sealed once, by the transaction that writes it' using errcode = '23514';
    end if;
    return new;
  end if;
  v_new.status := null; v_new.voided_by := null; v_new.voided_at := null; v_new.void_reason := null;
  v_old.status := null; v_old.voided_by := null; v_old.voided_at := null; v_old.void_reason := null;
  if v_new is distinct from v_old or old.status <> 'live' or new.status <> 'voided' then
    raise exception 'a batch''s file never changes; a live batch can only be voided' using errcode = '23514';
  end if;
  if v_role is not null and (v_role <> 'admin' or new.voided_by is distinct from v_user) then
    raise exception 'only an admin voids a batch, in their own name' using errcode = '42501';
  end if;
  if exists (select 1 from public.invoices i where i.org_id = old.org_id and i.batch_id = old.id and i.status = 'paid') then
    raise exception 'batch % has paid invoices and cannot be voided', old.number using errcode = '23514';
  end if;
  new.voided_at := now();
  return new;
end
$$;

-- At commit: a new batch's stored bytes hash to its sha256, and it holds exactly the invoices it names
-- (invoice_ids, in invoice-number order), exported, in its currency, adding up to its total. A voided
-- batch holds none.
create or replace function ap_export_batches_complete() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  v_batch public.ap_export_batches;
  v_bytes bytea;
  v_count bigint;
  v_total numeric;
  v_all_exported boolean;
  v_ids uuid[];
begin
  -- A deferred trigger's NEW is the row as the event wrote it; the batch as committed is read here.
  select * into v_batch from public.ap_export_batches b where b.id = new.id and b.org_id = new.org_id;
  if v_batch.status = 'voided' then
    if exists (select 1 from public.invoices i where i.org_id = v_batch.org_id and i.batch_id = v_batch.id) then
      raise exception 'a voided batch returns its invoices to approved in the same transaction' using errcode = '23514';
    end if;
    return null;
  end if;
  if tg_op = 'UPDATE' then
    return null;  -- the seal: checked by the insert's own event, at the same commit
  end if;
  if v_batch.sha256 is null then
    raise exception 'batch % was never sealed with its file', v_batch.number using errcode = '23514';
  end if;
  select string_agg(c.data, ''::bytea order by c.chunk_no) into v_bytes from public.ap_export_chunks c
   where c.org_id = v_batch.org_id and c.batch_id = v_batch.id;
  if v_bytes is null or octet_length(v_bytes) <> v_batch.size_bytes or encode(sha256(v_bytes), 'hex') <> v_batch.sha256 then
    raise exception 'the stored file of batch % does not match its size and sha256', v_batch.number using errcode = '23514';
  end if;
  -- Every invoice pointing at the batch counts, so one in another currency (or not exported) fails it.
  -- One pass over them (batch_id has no index, on purpose: see migration 0004), not four.
  select count(*), coalesce(sum(i.net_minor), 0), coalesce(bool_and(i.status = 'exported' and i.currency = v_batch.currency), true),
         coalesce(array_agg(i.id order by i.number), '{}')
    into v_count, v_total, v_all_exported, v_ids
    from public.invoices i where i.org_id = v_batch.org_id and i.batch_id = v_batch.id;
  if v_count <> v_batch.row_count or v_total <> v_batch.total_minor or not v_all_exported
     or v_ids is distinct from v_batch.invoice_ids then
    raise exception 'batch % must hold exactly its % invoices, exported, in %, totalling %', v_batch.number, v_batch.row_count,
      v_batch.currency, v_batch.total_minor using errcode = '23514';
  end if;
  return null;
end
$$;

-- At commit: every ledger transaction sums to zero, in one currency.
create or replace function ledger_entries_balanced() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if (select sum(l.amount_minor) <> 0 or count(distinct l.currency) <> 1
        from public.ledger_entries l where l.org_id = new.org_id and l.txn_id = new.txn_id) then
    raise exception 'ledger transaction % does not balance', new.txn_id using errcode = '23514';
  end if;
  return null;
end
$$;

do $$
declare
  v_controls boolean := exists (select 1 from pg_attribute a where a.attrelid = to_regclass('public.invoices')
                                   and a.attname = 'voided_at' and not a.attisdropped);
  -- (Revision 0030's raised_by, once it exists.)
  v_completion boolean := exists (select 1 from pg_attribute a where a.attrelid = to_regclass('public.invoices')
                                     and a.attname = 'raised_by' and not a.attisdropped);
begin
  if to_regclass('public.invoices') is not null then
    drop trigger if exists invoices_guard on public.invoices;
    create trigger invoices_guard before insert on public.invoices for each row execute function invoices_guard();
    -- Every update but an export's move, which invoices_exported_check takes per statement. The columns are
    -- those invoices_move_guard keeps, and the two it stamps or leaves to a CHECK (tests/integration/
    -- test_ap_export_moves.py changes each kept one on the export's path, and lists every column).
    drop trigger if exists invoices_move_guard on public.invoices;
    -- (Revision 0027's columns, approval_policy_id and voided_at, once they exist: earlier revisions apply this file.)
    execute format($t$
    create trigger invoices_move_guard before update on public.invoices for each row
      -- (is not distinct from throughout: a NULL here would skip the guard for a row that is no export)
      when (not (old.status is not distinct from 'approved' and new.status is not distinct from 'exported'
                 and new.exported_at is not distinct from now()
                 and (new.id, new.org_id, new.contractor_id, new.engagement_id, new.kind, new.milestone_id, new.review_id,
                      new.number, new.invoice_number, new.description, new.currency, new.gross_minor, new.retainage_bps,
                      new.retainage_minor, new.net_minor, new.fee_bps, new.fee_minor, new.total_minor, new.issued_on,
                      new.due_date, new.authorized_by, new.authorized_at, new.release_reason, new.paid_at, new.updated_at%1$s)
                     is not distinct from
                     (old.id, old.org_id, old.contractor_id, old.engagement_id, old.kind, old.milestone_id, old.review_id,
                      old.number, old.invoice_number, old.description, old.currency, old.gross_minor, old.retainage_bps,
                      old.retainage_minor, old.net_minor, old.fee_bps, old.fee_minor, old.total_minor, old.issued_on,
                      old.due_date, old.authorized_by, old.authorized_at, old.release_reason, old.paid_at, old.updated_at%2$s)))
      execute function invoices_move_guard()$t$,
      case when v_controls then ', new.approval_policy_id, new.voided_at' else '' end
        || case when v_completion then ', new.raised_by' else '' end,
      case when v_controls then ', old.approval_policy_id, old.voided_at' else '' end
        || case when v_completion then ', old.raised_by' else '' end);
    drop trigger if exists invoices_exported_check on public.invoices;
    create trigger invoices_exported_check after update on public.invoices referencing new table as moved
      for each statement execute function invoices_exported_check();
  end if;
  -- The derived totals' triggers, once their tables exist (revision 0014; earlier revisions apply this file too).
  if to_regclass('public.invoice_totals') is not null then
    drop trigger if exists invoices_totals_insert on public.invoices;
    create trigger invoices_totals_insert after insert on public.invoices referencing new table as added
      for each statement execute function invoices_totals_apply();
    drop trigger if exists invoices_totals_update on public.invoices;
    create trigger invoices_totals_update after update on public.invoices referencing old table as removed
      new table as added for each statement execute function invoices_totals_apply();
    drop trigger if exists invoices_totals_delete on public.invoices;
    create trigger invoices_totals_delete after delete on public.invoices referencing old table as removed
      for each statement execute function invoices_totals_apply();
  end if;
  if to_regclass('public.invoices') is not null then
    drop trigger if exists payments_guard on public.payments;
    create trigger payments_guard before insert on public.payments for each row execute function payments_guard();
    drop trigger if exists payments_reversal_guard on public.payments;
    create trigger payments_reversal_guard before update on public.payments for each row
      execute function payments_reversal_guard();
    drop trigger if exists payments_paid_invoice on public.payments;
    create constraint trigger payments_paid_invoice after insert on public.payments
      deferrable initially deferred for each row execute function payments_paid_invoice();
    drop trigger if exists ap_export_batches_guard on public.ap_export_batches;
    create trigger ap_export_batches_guard before insert or update on public.ap_export_batches
      for each row execute function ap_export_batches_guard();
    drop trigger if exists ap_export_batches_complete on public.ap_export_batches;
    create constraint trigger ap_export_batches_complete after insert or update on public.ap_export_batches
      deferrable initially deferred for each row execute function ap_export_batches_complete();
    drop trigger if exists ledger_entries_balanced on public.ledger_entries;
    create constraint trigger ledger_entries_balanced after insert on public.ledger_entries
      deferrable initially deferred for each row execute function ledger_entries_balanced();
  end if;
end
$$;
