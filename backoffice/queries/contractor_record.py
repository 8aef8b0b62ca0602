"""Contractors' track records in the current organization, for an owner comparing proposals before an award.

Counted from the organization's own rows only: RLS scopes every statement to the caller's organization (the
caller is one of its admins, owners or finance), so a contractor's history elsewhere never shows. Three
aggregate statements whatever the number of contractors, each grouped by contractor; their conditions match the
(org_id, contractor_id) indexes of engagements and milestones and the (org_id, milestone_id) ones below them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.money import round_half_up
from backoffice.domain.reviews import Decision

# Engagements under way: work may still be delivered on them.
_RUNNING = [EngagementStatus.ACTIVE.value, EngagementStatus.PAUSED.value]


@dataclass(frozen=True)
class ContractorRecord:
    """One contractor's record in the current organization. Milestones and reviews count whatever their
    engagement's status is now (an approved milestone of an engagement cancelled later too).

    - engagements_completed: engagements in status ``completed``.
    - engagements_active: engagements in status ``active`` or ``paused``.
    - milestones_approved: milestones in status ``approved`` (by an ``approve`` or a split ``partial``).
    - approved_first_time: approved milestones whose approving submission is revision 1 and was decided
      ``approve`` (a split ``partial`` is not; nor an ``approve`` of revision 1 voided by a rejected payment
      approval step, since the work went back and a later revision was approved).
    - disputes: reviews decided ``dispute``, on every revision of the contractor's milestones (a ``partial``
      sent back under the route_back policy and a rejected payment approval step are not disputes).
    - on_time: approved milestones whose approving submission was made (the database's clock, as a UTC date)
      on or before the milestone's due date.

    The approving submission of an approved milestone is its latest revision, the one its approval decided.
    """

    contractor_id: uuid.UUID
    engagements_completed: int
    engagements_active: int
    milestones_approved: int
    approved_first_time: int
    disputes: int
    on_time: int

    @property
    def first_time_rate(self) -> int | None:
        """approved_first_time / milestones_approved in basis points (10000 = all), rounded half up; None
        before any milestone is approved."""
        return _bps(self.approved_first_time, self.milestones_approved)

    @property
    def on_time_rate(self) -> int | None:
        """on_time / milestones_approved in basis points, rounded half up; None before any approval."""
        return _bps(self.on_time, self.milestones_approved)


def _bps(part: int, whole: int) -> int | None:
    return round_half_up(part * 10_000, whole) if whole else None


_ENGAGEMENTS = """
select e.contractor_id,
       count(*) filter (where e.status = :completed) as engagements_completed,
       count(*) filter (where e.status = any(:running)) as engagements_active
  from engagements e
 where e.contractor_id = any(:ids)
 group by e.contractor_id
"""

# The approving submission is the latest revision; its review approved the milestone. submitted_at is the
# database's clock (the submissions guard stamps it), read as a UTC date as due dates are.
_MILESTONES = """
select m.contractor_id,
       count(*) as milestones_approved,
       count(*) filter (where s.revision = 1 and r.decision = :approve) as approved_first_time,
       count(*) filter (where (s.submitted_at at time zone 'UTC')::date <= m.due_date) as on_time
  from milestones m
  left join lateral (
    select s.id, s.org_id, s.revision, s.submitted_at from submissions s
     where s.org_id = m.org_id and s.milestone_id = m.id
     order by s.revision desc limit 1
  ) s on true
  left join reviews r on r.org_id = s.org_id and r.submission_id = s.id
 where m.contractor_id = any(:ids) and m.status = :approved
 group by m.contractor_id
"""

# Through the contractor's milestones, so the (org_id, contractor_id) index bounds it (reviews have no index
# on contractor_id); a review's contractor is its milestone's (composite foreign key).
_DISPUTES = """
select m.contractor_id, count(*) as disputes
  from milestones m
  join reviews r on r.org_id = m.org_id and r.milestone_id = m.id
 where m.contractor_id = any(:ids) and r.decision = :dispute
 group by m.contractor_id
"""


def contractor_records(session: Session, contractor_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ContractorRecord]:
    """Each asked-for contractor's record in the current organization, keyed by its id. Every id gets one: zeros
    (and None rates) for a contractor without history here, or one that is not the organization's."""
    ids = list(dict.fromkeys(contractor_ids))
    figures: dict[uuid.UUID, dict[str, int]] = {i: {} for i in ids}
    if ids:
        params = {
            "ids": ids,
            "completed": EngagementStatus.COMPLETED.value,
            "running": _RUNNING,
            "approved": MilestoneStatus.APPROVED.value,
            "approve": Decision.APPROVE.value,
            "dispute": Decision.DISPUTE.value,
        }
        for sql in (_ENGAGEMENTS, _MILESTONES, _DISPUTES):
            for row in session.execute(text(sql), params).mappings():
                figures[row["contractor_id"]].update({k: v for k, v in row.items() if k != "contractor_id"})
    return {
        i: ContractorRecord(
            contractor_id=i,
            engagements_completed=f.get("engagements_completed", 0),
            engagements_active=f.get("engagements_active", 0),
            milestones_approved=f.get("milestones_approved", 0),
            approved_first_time=f.get("approved_first_time", 0),
            disputes=f.get("disputes", 0),
            on_time=f.get("on_time", 0),
        )
        for i, f in figures.items()
    }
