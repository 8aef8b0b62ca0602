-- The rules that backoffice/domain names once, copied here so that the guards enforce them again
-- whoever writes (defence in depth; DESIGN.md sections 3 and 4). Each function is the SQL twin of the
-- Python named beside it, and tests/integration/test_rule_parity.py enumerates every combination of its
-- arguments (every status, role and move; amounts over the whole range) and holds the two equal. Change
-- a rule in Python first, then here; the parity test fails until both say the same.
--
-- Pure functions only: IMMUTABLE, no table read, not SECURITY DEFINER, no SET clause (so SQL-language ones
-- stay inlinable). Guards call them schema-qualified (public.…) under their pinned search_path.
--
--   money_percent_of          domain.money.percent_of            the one rounding rule
--   milestone_amounts         domain.invoices.milestone_amounts  what an approval authorizes
--   withheld_bps              domain.invoices.withheld_bps       retainage withheld once released
--   is_manager                domain.roles.MANAGERS              who may run some engagement
--   can_decide                domain.engagements.can_decide      who runs this engagement, decides on its work
--   reviewable                domain.engagements.REVIEWABLE      where submitted work is decided on
--   engagement_move_roles     domain.engagements.engagement_move_roles (ACTIONS)
--   milestone_move_refusal    domain.engagements.milestone_move_refusal (MILESTONE_MOVES)
--   invoice_move_allowed      domain.invoices.can_move (MOVES)
--   may_approve_step          domain.approvals.may_approve       who may decide a step of a payment's approval

-- round_half_up(amount × bps / 10000) on integers: every guard that checks an amount uses this (through
-- milestone_amounts), exactly as percent_of does in Python.
create or replace function money_percent_of(p_amount bigint, p_bps integer) returns bigint
language sql immutable strict parallel safe as $$
  select div(2::numeric * p_amount * p_bps + 10000, 20000)::bigint
$$;

-- What approving p_gross authorizes: retainage withheld, net payable now, service fee, total billed.
create or replace function milestone_amounts(
  p_gross bigint, p_retainage_bps integer, p_fee_bps integer,
  out retainage_minor bigint, out net_minor bigint, out fee_minor bigint, out total_minor bigint)
language sql immutable strict parallel safe as $$
  select a.retainage, p_gross - a.retainage, a.fee, p_gross + a.fee
    from (select public.money_percent_of(p_gross, p_retainage_bps) as retainage,
                 public.money_percent_of(p_gross, p_fee_bps) as fee) a
$$;

-- Once an engagement's retainage is released, later approvals withhold none.
create or replace function withheld_bps(p_retainage_bps integer, p_released boolean) returns integer
language sql immutable strict parallel safe as $$
  select case when p_released then 0 else p_retainage_bps end
$$;

-- Who may run some engagement: domain.roles.MANAGERS. A guard asks this first, before it reads the row.
create or replace function is_manager(p_role text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_role in ('admin', 'owner'), false)
$$;

-- An admin, or the project owner named on the engagement.
create or replace function can_decide(p_role text, p_user_id uuid, p_owner_user_id uuid) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_role = 'admin' or (p_role = 'owner' and p_user_id = p_owner_user_id), false)
$$;

create or replace function reviewable(p_engagement_status text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_engagement_status in ('active', 'paused'), false)
$$;

-- The roles that may move an engagement from p_source to p_target; empty when there is no such move.
create or replace function engagement_move_roles(p_source text, p_target text) returns text[]
language sql immutable parallel safe as $$
  select case p_source || '>' || p_target
    when 'draft>awaiting_acceptance' then '{admin,owner}'          -- send
    when 'awaiting_acceptance>active' then '{contractor}'          -- accept
    when 'awaiting_acceptance>declined' then '{contractor}'        -- decline
    when 'active>paused' then '{admin,owner}'                      -- pause
    when 'paused>active' then '{admin,owner}'                      -- resume
    when 'active>completed' then '{admin,owner}'                   -- complete
    when 'draft>cancelled' then '{admin,owner}'                    -- cancel
    when 'awaiting_acceptance>cancelled' then '{admin,owner}'
    when 'active>cancelled' then '{admin,owner}'
    when 'paused>cancelled' then '{admin,owner}'
    else '{}' end::text[]
$$;

-- Why a milestone may not move from p_source to p_target now: 'illegal' (no such move), 'role' (not this
-- person's move; a NULL role is the system itself, bound by no role rule), 'engagement' (not while the
-- engagement is in this status); NULL when it may.
create or replace function milestone_move_refusal(p_source text, p_target text, p_role text, p_engagement_status text)
returns text
language sql immutable parallel safe as $$
  select case
    when m.roles is null then 'illegal'
    when p_role is not null and not p_role = any (m.roles) then 'role'
    when not coalesce(p_engagement_status = any (m.engagement_statuses), false) then 'engagement'
  end
  from (select) as one
  left join (values
    ('planned', 'submitted', '{contractor}'::text[], '{active}'::text[]),   -- the contractor marks complete
    ('submitted', 'planned', '{admin,owner}', '{active,paused}'),          -- disputed, or partial routed back
    ('submitted', 'approved', '{admin,owner}', '{active,paused}'),         -- approved
    ('planned', 'cancelled', '{admin,owner}', '{active,paused}'),          -- cancelled by change order
    ('approved', 'planned', '{admin,owner,finance}', '{active,paused}')    -- its payment's approval rejected
  ) as m(source, target, roles, engagement_statuses) on m.source = p_source and m.target = p_target
$$;

-- The moves of an invoice's payment status. Called once per row of an AP export (100,000 rows): a plain
-- CASE that the planner inlines.
create or replace function invoice_move_allowed(p_source text, p_target text) returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_source || '>' || p_target in (
    'pending_approval>approved',  -- the last step of its approval policy approved it
    'pending_approval>void',      -- a step rejected it: the work went back to the contractor
    'approved>exported',  -- into a live AP export batch, or handed to a payment rail
    'exported>approved',  -- its batch was voided
    'approved>paid',      -- paid with its payment record
    'exported>paid',
    'exported>on_hold',   -- a payment rail refused it
    'paid>on_hold',       -- a payment rail reversed its payment
    'on_hold>approved'    -- the hold released: payable again
  ), false)
$$;

-- Whether a member with p_role (NULL: none, or not staff) may decide a step naming p_step_role or the people
-- p_step_ids: a staff member with that role, or one of the people it names; never a contractor's user.
create or replace function may_approve_step(p_step_role text, p_step_ids uuid[], p_role text, p_user uuid)
returns boolean
language sql immutable parallel safe as $$
  select coalesce(p_role in ('admin', 'owner', 'finance') and p_user is not null
                  and (p_step_role = p_role or p_user = any (p_step_ids)), false)
$$;

-- Who executes them. The SECURITY DEFINER guards (invoices_guard, reviews_guard ...) call them as the owner,
-- which needs no grant. The web role executes those the web role's own statements call: can_decide and
-- reviewable in the review queue's query (queries/reviews), and the three that the guards running as the
-- caller call (engagements_guard, milestones_guard, invoices_move_guard). No query of the web role's calls
-- money_percent_of, milestone_amounts, withheld_bps or is_manager (the pages compute with their Python
-- twins), so since revision 0011 the web role may not either. The worker role's grant (invoices_move_guard, as
-- the Stripe payout job moves an invoice) is sql/rails.sql's: revoked here too, so every run of these files
-- grants in the same order and leaves the same ACL (a restore applies them once, a migrated database once per
-- revision: tests/integration/test_backup_restore.py compares the two).
do $$
declare
  v_fn text;
begin
  foreach v_fn in array array[
    'money_percent_of(bigint, integer)', 'milestone_amounts(bigint, integer, integer)',
    'withheld_bps(integer, boolean)', 'is_manager(text)', 'can_decide(text, uuid, uuid)', 'reviewable(text)',
    'engagement_move_roles(text, text)', 'milestone_move_refusal(text, text, text, text)',
    'invoice_move_allowed(text, text)', 'may_approve_step(text, uuid[], text, uuid)'
  ] loop
    execute format('revoke all on function public.%s from public, %I, %I', v_fn, current_setting('backoffice.app_role'),
                   current_setting('backoffice.worker_role'));
  end loop;
  foreach v_fn in array array[
    'can_decide(text, uuid, uuid)', 'reviewable(text)',
    'engagement_move_roles(text, text)', 'milestone_move_refusal(text, text, text, text)',
    'invoice_move_allowed(text, text)'
  ] loop
    execute format('grant execute on function public.%s to %I', v_fn, current_setting('backoffice.app_role'));
  end loop;
end
$$;
