"""The figures of the staff home pages: what waits for a decision, what is due, what is payable and when,
what is blocked, what the trail says. Each figure is counted by the WHERE rule of the list it links to
(imported from that list's module, never restated), so a figure and its list cannot disagree; each one
aggregates over the index or the derived totals its list walks, because a home page runs them all on every
view, under row-level security, at a large organization's size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.queries import engagements as engagement_queries
from backoffice.queries import money as money_queries
from backoffice.queries import notifications as notification_queries
from backoffice.queries import reviews as review_queries

# --- owners (and admins, who decide too) ---------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFigures:
    waiting: int  # the review queue's length, counted to review_queries.COUNT_CAP + 1
    oldest_since: datetime | None  # when the longest-waiting of them was submitted
    overdue: int  # waiting longer than the organization's review time, counted to the same cap
    sla_days: int


def review_figures(session: Session, actor: Actor) -> ReviewFigures:
    """The review queue's length, its oldest wait and how many have waited past the organization's review
    time: the queue's own rule (reviews._DECIDABLE) over its (org_id, submitted_at, id) index of submitted
    milestones, each count stopping at the queue badge's cap."""
    params = {"role": actor.role.value, "user_id": actor.user_id, "org": actor.org_id}
    decidable = (
        "select m.submitted_at from milestones m join engagements e on e.id = m.engagement_id and e.org_id = m.org_id"
        f" where {review_queries._DECIDABLE} and m.org_id = :org and e.org_id = :org"
    )
    cap = review_queries.COUNT_CAP + 1
    row = (
        session.execute(
            text(f"""
        select (select review_sla_days from organizations where id = :org) as sla_days,
               (select w.submitted_at from ({decidable}) w order by w.submitted_at limit 1) as oldest_since,
               (select count(*) from ({decidable}
                  and m.submitted_at < now() - make_interval(days => (select review_sla_days from organizations
                                                                      where id = :org))
                  limit {cap}) w) as overdue"""),
            params,
        )
        .mappings()
        .one()
    )
    return ReviewFigures(
        waiting=review_queries.queue_count(session, actor),
        oldest_since=row["oldest_since"],
        overdue=row["overdue"],
        sla_days=row["sla_days"],
    )


DUE_CAP = 99  # a count stops past it and the card says "99+": each walk ends after DUE_CAP + 1 rows


@dataclass(frozen=True)
class DueFigures:
    overdue: int  # counted to DUE_CAP + 1
    this_week: int  # due from today through Sunday, counted to DUE_CAP + 1
    week_end: date


def due_figures(session: Session, actor: Actor, today: date) -> DueFigures:
    """Open milestones of running engagements overdue and due this week, in one statement: the Due list's own
    WHERE (engagements.due_where, which also narrows to a contractor's own for a contractor) cut to each date
    range, walking its (org_id, due_date, id) index of open milestones in the list's order and stopping after
    DUE_CAP + 1 rows. Counted from milestones alone: the names and latest review the list joins to its page
    change no count."""
    week_end = end_of_week(today)
    params = {"org_id": actor.org_id, "contractor_id": actor.contractor_id, "today": today, "week_end": week_end}

    def walked(condition: str, columns: str) -> str:
        where = engagement_queries.due_where(actor.org_id, condition=condition, contractor_id=actor.contractor_id)
        return (
            f"select {columns} from milestones m where {where}"
            f" order by {engagement_queries.DUE_ORDER} limit {DUE_CAP + 1}"
        )

    # Overdue: the list's first DUE_CAP + 1 rows, exactly as the Due page walks them (soonest due first, so the
    # overdue ones come first), counting those due before today. Asked for "due before today" outright, under RLS
    # the planner sorted every open milestone of the organization instead of walking the index: 76 ms against
    # 1 ms at the large dataset's 18,000 overdue of 31,000 open.
    row = session.execute(
        text(
            f"select (select count(*) filter (where d.due_date < :today) from ({walked('true', 'm.due_date')}) d)"
            "         as overdue,"
            f"       (select count(*) from ({walked('m.due_date >= :today and m.due_date <= :week_end', '1')}) d)"
            "         as this_week"
        ),
        params,
    ).one()
    return DueFigures(overdue=row.overdue, this_week=row.this_week, week_end=week_end)


@dataclass(frozen=True)
class Commitments:
    currency: str
    committed_minor: int  # the contract value of running (active) engagements
    approved_minor: int  # approved for payment and not paid yet
    paid_minor: int


def commitments(session: Session, actor: Actor) -> list[Commitments]:
    """Per currency, across the engagements ``actor`` runs: committed (the contract value of the active
    ones), approved and not yet paid, and paid. One aggregate over the engagement list's own rows (its WHERE,
    engagements.list_where, filtered by owner as the list's Owner filter is, over the (org_id, owner_user_id)
    index) and its own per-engagement sums and contract value and approved (MILESTONE_SUMS, INVOICE_SUMS,
    CONTRACT_VALUE, APPROVED), grouped by engagement over the (org_id, engagement_id) indexes of milestones and
    invoices: each figure is the total of the list it links to, without the list's names, counts and dates."""
    q = engagement_queries
    where = q.list_where(actor.org_id, owner_id=actor.user_id)
    rows = session.execute(
        text(f"""
        with e as materialized (
          select e.id, e.currency, e.status, e.billing_mode, e.advance_minor from engagements e where {where}),
        t as (select e.id,{q.MILESTONE_SUMS}
                from e left join milestones m on m.engagement_id = e.id and m.org_id = :org_id group by e.id),
        v as (select e.id,{q.INVOICE_SUMS}
                from e left join invoices i on i.engagement_id = e.id and i.org_id = :org_id group by e.id)
        select e.currency,
               coalesce(sum({q.CONTRACT_VALUE}) filter (where e.status = 'active'), 0)::bigint as committed_minor,
               coalesce(sum({q.APPROVED} - v.paid), 0)::bigint as approved_minor,
               coalesce(sum(v.paid), 0)::bigint as paid_minor
          from e join t on t.id = e.id join v on v.id = e.id
         group by e.currency order by e.currency"""),
        {"org_id": actor.org_id, "owner_id": actor.user_id},
    ).mappings()
    return [Commitments(**r) for r in rows if r["committed_minor"] or r["approved_minor"] or r["paid_minor"]]


# --- finance ---------------------------------------------------------------------------------------------


def end_of_week(day: date) -> date:
    """The Sunday of ``day``'s week (weeks run Monday to Sunday)."""
    return day + timedelta(days=6 - day.weekday())


def end_of_month(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


@dataclass(frozen=True)
class Amount:
    count: int = 0
    net_minor: int = 0

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.count + other.count, self.net_minor + other.net_minor)


@dataclass(frozen=True)
class Payable:
    """One currency's open payments by when they are due: disjoint buckets that add up to the queue."""

    currency: str
    overdue: Amount
    this_week: Amount
    this_month: Amount  # after this week, through the month's end (empty when the week ends later)
    later: Amount

    @property
    def total(self) -> Amount:
        return self.overdue + self.this_week + self.this_month + self.later


@dataclass(frozen=True)
class WeekBar:
    label: str
    starts: date | None  # None: the overdue bar
    net_minor: int


CASH_OUT_WEEKS = 8


@dataclass(frozen=True)
class CashOut:
    currency: str
    bars: list[WeekBar]  # overdue first, then this week and the seven after it
    week_end: date  # this week's Sunday


@dataclass(frozen=True)
class FinanceFigures:
    today: date
    week_end: date
    month_end: date
    payable: list[Payable]
    blocked: list[money_queries.CurrencyTotal]
    retainage_held: list[tuple[str, int]]  # (currency, held), the most first
    cash_out: list[CashOut] = field(default_factory=list)

    @property
    def overdue_through(self) -> date:
        """The queue's "due on or before" date that lists exactly the overdue payments."""
        return self.today - timedelta(days=1)

    def due_range(self, bucket: str) -> tuple[date | None, date | None]:
        """The queue's (due on or after, due on or before) that list exactly ``bucket``'s payments, by the
        same cuts finance_figures sorts them by: a card's figure is its list's total."""
        later_from = max(self.week_end, self.month_end) + timedelta(days=1)
        return {
            "overdue": (None, self.overdue_through),
            "this_week": (self.today, self.week_end),
            "this_month": (self.week_end + timedelta(days=1), self.month_end),
            "later": (later_from, None),
        }[bucket]


def finance_figures(session: Session, today: date) -> FinanceFigures:
    """Payable by due date per currency, blocked payments, retainage held and the cash out by week. Payable is
    the payment queue's default view (QueueFilters().statuses) read from the derived invoice_totals the
    queue's own totals read (a row per status, currency and due date, whatever the organization's size);
    blocked is the queue's Blocked view's totals; retainage held the retainage report's per-contractor totals."""
    week_end, month_end = end_of_week(today), end_of_month(today)
    open_statuses = money_queries.QueueFilters().statuses
    by_day = session.execute(
        text(
            "select t.currency, t.due_date, sum(t.invoices)::bigint as count, sum(t.net_minor)::bigint as net_minor"
            "  from invoice_totals t where t.status = any(:statuses) and t.invoices <> 0"
            " group by t.currency, t.due_date order by t.currency, t.due_date"
        ),
        {"statuses": open_statuses},
    ).all()
    payable: dict[str, dict[str, Amount]] = {}
    weeks: dict[str, list[int]] = {}
    for currency, due, count, net in by_day:
        buckets = payable.setdefault(currency, {k: Amount() for k in ("overdue", "this_week", "this_month", "later")})
        key = (
            "overdue"
            if due < today
            else "this_week"
            if due <= week_end
            else "this_month"
            if due <= month_end
            else "later"
        )
        buckets[key] += Amount(count, net)
        bars = weeks.setdefault(currency, [0] * (CASH_OUT_WEEKS + 1))
        if due < today:
            bars[0] += net
        elif (week := (due - (week_end - timedelta(days=6))).days // 7) < CASH_OUT_WEEKS:
            bars[1 + week] += net
    monday = week_end - timedelta(days=6)
    return FinanceFigures(
        today=today,
        week_end=week_end,
        month_end=month_end,
        payable=[Payable(currency, **buckets) for currency, buckets in payable.items()],
        blocked=money_queries._queue_totals(session, money_queries.QueueFilters(status="blocked")),
        retainage_held=_retainage_held(session),
        cash_out=[
            CashOut(
                currency,
                [WeekBar("Overdue", None, bars[0])]
                + [
                    WeekBar("This week" if n == 0 else "", monday + timedelta(weeks=n), bars[1 + n])
                    for n in range(CASH_OUT_WEEKS)
                ],
                week_end,
            )
            for currency, bars in weeks.items()
        ],
    )


def _retainage_held(session: Session) -> list[tuple[str, int]]:
    # The retainage report's per-contractor totals (contractor_retainage_totals, as retainage_by_contractor
    # reads them): a row per contractor and currency, not per invoice.
    return [
        (r.currency, r.held)
        for r in session.execute(
            text(
                "select t.currency, sum(t.withheld_minor - t.released_minor)::bigint as held"
                "  from contractor_retainage_totals t where t.withheld_minor > 0"
                " group by t.currency having sum(t.withheld_minor - t.released_minor) <> 0 order by held desc"
            )
        )
    ]


# --- admins ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainState:
    events: int  # the newest event's number: the chain's length
    newest_at: datetime | None
    checked_at: datetime | None  # the last check from the audit page, if any was recorded
    checked_intact: bool | None
    checked_events: int | None


@dataclass(frozen=True)
class AdminFigures:
    pending_invitations: int
    failed_emails: int  # counted to failed_cap + 1, as the outbox counts
    chain: ChainState
    failed_cap: int = notification_queries.COUNT_CAP  # past it the card says "1000+", as the outbox's tab does


def admin_figures(session: Session, actor: Actor) -> AdminFigures:
    """Invitations not accepted yet (the members list's pending rows), failed emails (the outbox's Failed count,
    by the same capped count over its (org_id, status) index), and the audit chain: its head, and the last
    check recorded, found by the (org_id, entity_type, entity_id) index rather than by reading the chain,
    which a check does in full."""
    row = (
        session.execute(
            text(f"""
        select (select count(*) from memberships m where m.accepted_at is null) as pending_invitations,
               (select count(*) from (select 1 from email_messages m where m.org_id = :org and m.status = 'failed'
                  limit {notification_queries.COUNT_CAP + 1}) f) as failed_emails,
               h.seq as events, h.occurred_at as newest_at,
               c.occurred_at as checked_at, (c.data ->> 'intact')::boolean as checked_intact,
               (c.data ->> 'events')::bigint as checked_events
          from (select 1) one
          left join lateral (select a.seq, a.occurred_at from audit_events a where a.org_id = :org
                              order by a.seq desc limit 1) h on true
          left join lateral (select a.occurred_at, a.data from audit_events a
                              where a.org_id = :org and a.entity_type = 'audit_trail' and a.entity_id = :org_text
                                and a.action = 'audit.chain_checked'  -- services/audit.record_check
                              order by a.seq desc limit 1) c on true"""),
            {"org": actor.org_id, "org_text": str(actor.org_id)},
        )
        .mappings()
        .one()
    )
    return AdminFigures(
        pending_invitations=row["pending_invitations"],
        failed_emails=row["failed_emails"],
        chain=ChainState(
            events=row["events"] or 0,
            newest_at=row["newest_at"],
            checked_at=row["checked_at"],
            checked_intact=row["checked_intact"],
            checked_events=row["checked_events"],
        ),
    )


def today_in_db(session: Session) -> date:
    """The database's date: the lists mark overdue by current_date, so the figures cut their weeks by it too."""
    return session.execute(text("select current_date")).scalar_one()
