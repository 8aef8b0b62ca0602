"""What a contractor's home page lists: work requests to answer, work sent back, what is due next and the
money on its way. Read as the contractor, so row-level security keeps it to their own rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.domain.milestone_status import ShownStatus, shown_status

DUE_NEXT = 5


@dataclass(frozen=True)
class WorkRequest:
    id: uuid.UUID
    title: str
    currency: str
    value_minor: int  # the contract value (with the advance, billed on completion)
    milestones: int
    sent_at: object
    billing_mode: str = "milestone"


@dataclass(frozen=True)
class Returned:
    id: uuid.UUID
    title: str
    engagement_title: str
    decision: str  # 'dispute' or 'partial'
    reason: str
    decided_at: object
    partial_policy: str | None = None

    @property
    def shown(self) -> ShownStatus:
        return shown_status("planned", self.decision, self.partial_policy)


@dataclass(frozen=True)
class NextDue:
    id: uuid.UUID
    title: str
    engagement_title: str
    currency: str
    amount_minor: int
    due_date: date
    overdue: bool


@dataclass(frozen=True)
class MoneyLine:
    currency: str
    coming_minor: int  # authorized or exported, not yet paid: net
    coming_count: int
    paid_30d_minor: int


@dataclass(frozen=True)
class ContractorHome:
    requests: list[WorkRequest]
    returned: list[Returned]
    due: list[NextDue]
    money: list[MoneyLine]


_REQUESTS = """
select e.id, e.title, e.currency, e.billing_mode,
       (coalesce(sum(m.amount_minor) filter (where m.status <> 'cancelled'), 0) + e.advance_minor)::bigint
         as value_minor,
       count(m.id) filter (where m.status <> 'cancelled') as milestones, e.sent_at
  from engagements e left join milestones m on m.engagement_id = e.id
 where e.status = 'awaiting_acceptance' and e.contractor_id = :contractor
 group by e.org_id, e.id order by e.sent_at, e.id  -- e's key, so its other columns may be named
"""

_RETURNED = """
select m.id, m.title, e.title as engagement_title, r.decision, r.reason, r.reviewed_at as decided_at,
       r.partial_policy
  from milestones m
  join engagements e on e.id = m.engagement_id
  join lateral (select s.id from submissions s where s.milestone_id = m.id order by s.revision desc limit 1) s on true
  join reviews r on r.submission_id = s.id
 where m.contractor_id = :contractor and m.status = 'planned' and e.status in ('active', 'paused')
   and r.decision in ('dispute', 'partial')
 order by r.reviewed_at desc
"""

_DUE = """
select m.id, m.title, e.title as engagement_title, e.currency, m.amount_minor, m.due_date,
       m.due_date < current_date as overdue
  from milestones m join engagements e on e.id = m.engagement_id
 where m.contractor_id = :contractor and m.status = 'planned' and e.status = 'active'
 order by m.due_date, m.seq
 limit :limit
"""

_MONEY = """
select currency,
       coalesce(sum(net_minor) filter (where status in ('approved', 'exported')), 0)::bigint as coming_minor,
       count(*) filter (where status in ('approved', 'exported')) as coming_count,
       coalesce(sum(net_minor) filter (where status = 'paid' and paid_at >= current_date - 30), 0)::bigint
         as paid_30d_minor
  from invoices
 where contractor_id = :contractor and status in ('approved', 'exported', 'paid')
 group by currency order by currency
"""


def contractor_home(session: Session, contractor_id: uuid.UUID) -> ContractorHome:
    """A contractor user's home. Row-level security already keeps it to their contractor; the queries say so
    too, so the planner walks that contractor's rows by index instead of the organization's."""
    mine = {"contractor": contractor_id}
    return ContractorHome(
        requests=[WorkRequest(**r) for r in session.execute(text(_REQUESTS), mine).mappings()],
        returned=[Returned(**r) for r in session.execute(text(_RETURNED), mine).mappings()],
        due=[NextDue(**r) for r in session.execute(text(_DUE), {"limit": DUE_NEXT, **mine}).mappings()],
        money=[
            MoneyLine(**r)
            for r in session.execute(text(_MONEY), mine).mappings()
            if r["coming_count"] or r["paid_30d_minor"]
        ],
    )
