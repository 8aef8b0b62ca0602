"""Read side of projects for the organization's staff (admins, owners, finance): the list, one project's page,
and the comparison of its proposals side by side with each contractor's record here.

RLS scopes every statement to the caller's organization; these pages are staff pages (a contractor's user reads
projects through queries/proposals.py, which shows it its own proposal only).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backoffice.domain.completion import BillingMode, advance_amount, task_word
from backoffice.domain.projects import Audience, ProjectStatus, ProposalStatus, proposal_task_pool
from backoffice.queries.contractor_record import ContractorRecord, contractor_records
from backoffice.queries.paging import Cursor, Keyset, KeysetPage


def today(session: Session):
    """The day deadlines are compared with: the database's, in UTC (project_today(), sql/projects.sql), which the
    guards use too, so a page and a guard never disagree about whether a deadline has passed."""
    return session.execute(select(func.project_today())).scalar_one()


PER_PAGE = 25

# The list's status filter: one status, or every one ("all").
STATUS_FILTERS = {s.value: s.label for s in ProjectStatus} | {"all": "All projects"}
DEFAULT_STATUS = ProjectStatus.OPEN.value


@dataclass(frozen=True)
class ProjectRow:
    id: uuid.UUID
    title: str
    status: ProjectStatus
    category_name: str
    deadline: date
    currency: str
    budget_minor: int | None
    audience: Audience
    owner_name: str | None
    waiting: int  # proposals submitted and not yet decided
    proposals: int  # every proposal, whatever its status


# Newest deadline first. Each status is its own walk down the (org_id, status, deadline) index.
LIST_KEYSET = Keyset(("p.deadline", "p.id"), (date, uuid.UUID), descending=True)


def list_sql(statuses: int, condition: str, order: str) -> str:
    # The page is picked first: for each status asked for, the first page's worth of ids in deadline order over
    # the (org_id, status, deadline) index, merged and cut to one page ("all" is three short walks, not a sort
    # of the organization's projects); names and proposal counts are joined to that page only. The
    # organization is named outright as well as by RLS, so the planner knows which slice of the index it reads.
    walks = " union all ".join(
        f"""(select p.id, p.deadline from projects p
              where p.org_id = :org_id and p.status = :status_{i} and {condition}
              order by {order} limit :limit)"""
        for i in range(statuses)
    )
    return f"""
    with page as materialized (
      select p.id, p.deadline from ({walks}) p order by {order} limit :limit
    )
    select p.id, p.title, p.status, p.deadline, p.currency, p.budget_minor, p.audience,
           c.name as category_name, u.name as owner_name,
           coalesce(q.waiting, 0) as waiting, coalesce(q.proposals, 0) as proposals
      from page x
      join projects p on p.org_id = :org_id and p.id = x.id
      join project_categories c on c.org_id = p.org_id and c.id = p.category_id
      left join users u on u.id = p.owner_user_id
      left join lateral (
        select count(*) filter (where q.status = 'submitted') as waiting, count(*) as proposals
          from proposals q
         where q.org_id = p.org_id and q.project_id = p.id
      ) q on true
     order by {order}
    """


def project_list(
    session: Session,
    org_id,
    *,
    status: str = DEFAULT_STATUS,
    cursor: Cursor | None = None,
    per_page: int | None = None,
) -> KeysetPage:
    """One page of the organization's projects in a status (or "all"), newest deadline first, each with its
    category, owner and how many proposals it has and how many wait for a decision."""
    per_page = per_page or PER_PAGE
    statuses = [s.value for s in ProjectStatus] if status == "all" else [ProjectStatus(status).value]
    condition, order, key_params = LIST_KEYSET.clause(cursor)
    params = {f"status_{i}": s for i, s in enumerate(statuses)} | {"org_id": org_id, "limit": per_page + 1}
    rows = session.execute(text(list_sql(len(statuses), condition, order)), params | key_params).mappings()
    fetched = [
        ProjectRow(**{**r, "status": ProjectStatus(r["status"]), "audience": Audience(r["audience"])}) for r in rows
    ]
    return KeysetPage.build(fetched, cursor, per_page, key=lambda r: (r.deadline, r.id))


# --- one project ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvitedContractor:
    id: uuid.UUID
    name: str
    proposed: bool


@dataclass(frozen=True)
class ProjectDetail:
    id: uuid.UUID
    title: str
    description: str
    status: ProjectStatus
    category_id: uuid.UUID
    category_name: str
    currency: str
    budget_minor: int | None
    deadline: date
    billing_mode: str
    advance_bps: int | None  # a completion project's advance (domain.completion), None under milestone billing
    audience: Audience
    owner_user_id: uuid.UUID
    owner_name: str | None
    created_by_name: str | None
    created_at: datetime
    updated_at: datetime
    awarded_by_name: str | None
    awarded_at: datetime | None
    cancelled_by_name: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    engagement_id: uuid.UUID | None  # the contract the award created
    invited: list[InvitedContractor] = field(default_factory=list)

    @property
    def completion(self) -> bool:
        """Its contract is billed on completion: an advance at the award, tasks for the rest."""
        return self.billing_mode == BillingMode.COMPLETION

    def task_word(self, *, plural: bool = False, capital: bool = False) -> str:
        """What its contract's milestones are called ("tasks" under completion billing)."""
        return task_word(self.billing_mode, plural=plural, capital=capital)


_DETAIL = """
select p.id, p.title, p.description, p.status, p.category_id, c.name as category_name, p.currency, p.budget_minor,
       p.deadline, p.billing_mode, p.advance_bps, p.audience, p.owner_user_id, o.name as owner_name,
       cb.name as created_by_name,
       p.created_at, p.updated_at, ab.name as awarded_by_name, p.awarded_at, xb.name as cancelled_by_name,
       p.cancelled_at, p.cancel_reason,
       (select e.id from proposals q
          join engagements e on e.org_id = q.org_id and e.proposal_id = q.id
         where q.org_id = p.org_id and q.project_id = p.id and q.status = 'accepted') as engagement_id
  from projects p
  join project_categories c on c.org_id = p.org_id and c.id = p.category_id
  left join users o on o.id = p.owner_user_id
  left join users cb on cb.id = p.created_by
  left join users ab on ab.id = p.awarded_by
  left join users xb on xb.id = p.cancelled_by
 where p.id = :id
"""

_INVITED = """
select c.id, c.legal_name as name,
       exists (select 1 from proposals q
                where q.org_id = i.org_id and q.project_id = i.project_id and q.contractor_id = i.contractor_id)
         as proposed
  from project_invitations i
  join contractors c on c.org_id = i.org_id and c.id = i.contractor_id
 where i.project_id = :id
 order by lower(c.legal_name), c.id
"""


def project_detail(session: Session, project_id: uuid.UUID) -> ProjectDetail | None:
    """Everything the project page shows about the project itself, or None when RLS hides it (or it does not
    exist): its category and people by name, the contractors invited, and the engagement an award created."""
    r = session.execute(text(_DETAIL), {"id": project_id}).mappings().first()
    if r is None:
        return None
    invited = [InvitedContractor(**i) for i in session.execute(text(_INVITED), {"id": project_id}).mappings()]
    return ProjectDetail(
        **{**r, "status": ProjectStatus(r["status"]), "audience": Audience(r["audience"])}, invited=invited
    )


# --- the proposals, side by side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposedMilestone:
    seq: int
    title: str
    deliverable: str
    amount_minor: int
    due_date: date


@dataclass(frozen=True)
class ProposalFileRow:
    id: uuid.UUID
    file_name: str
    size_bytes: int
    content_type: str


@dataclass(frozen=True)
class ProposalView:
    id: uuid.UUID
    contractor_id: uuid.UUID
    contractor_name: str
    status: ProposalStatus
    price_minor: int
    timeline: str
    note: str
    submitted_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    withdrawn_at: datetime | None
    milestones: list[ProposedMilestone]
    files: list[ProposalFileRow]
    record: ContractorRecord
    advance_bps: int | None = None  # the project's advance on a completion project; None under milestone billing

    @property
    def advance_minor(self) -> int | None:
        """The advance an award of this proposal authorizes at once (its price at the project's rate), or None."""
        return None if self.advance_bps is None else advance_amount(self.price_minor, self.advance_bps)

    @property
    def task_pool(self) -> int:
        """What its milestones (tasks) share: the price, less the advance on a completion project."""
        return proposal_task_pool(self.price_minor, self.advance_bps)

    @property
    def first_due(self) -> date | None:
        return min((m.due_date for m in self.milestones), default=None)

    @property
    def last_due(self) -> date | None:
        """When the proposed work would be finished: its last milestone's due date."""
        return max((m.due_date for m in self.milestones), default=None)

    @property
    def waiting(self) -> bool:
        return self.status == ProposalStatus.SUBMITTED


# The accepted one first, then those waiting for a decision, then the declined and withdrawn; in the order they
# came in within each.
_PROPOSALS = """
select q.id, q.contractor_id, c.legal_name as contractor_name, q.status, q.price_minor, q.timeline, q.note,
       q.submitted_at, q.updated_at, q.decided_at, q.withdrawn_at,
       p.advance_bps  -- set on a completion project only (projects_advance_only_for_completion)
  from proposals q
  join contractors c on c.org_id = q.org_id and c.id = q.contractor_id
  join projects p on p.org_id = q.org_id and p.id = q.project_id
 where q.project_id = :id
 order by array_position(array['accepted', 'submitted', 'declined', 'withdrawn'], q.status), q.submitted_at, q.id
"""

_MILESTONES = """
select m.proposal_id, m.seq, m.title, m.deliverable, m.amount_minor, m.due_date
  from proposal_milestones m
 where m.proposal_id = any(:ids)
 order by m.proposal_id, m.seq
"""

_FILES = """
select f.proposal_id, f.id, f.file_name, f.size_bytes, f.content_type
  from proposal_files f
 where f.proposal_id = any(:ids)
 order by f.proposal_id, f.position
"""


def proposals_compared(session: Session, project_id: uuid.UUID) -> list[ProposalView]:
    """Every proposal of the project, each with its milestones, its files (not their bytes), the project's advance on
    a completion project, and its contractor's record in this organization (queries/contractor_record.py). Four
    statements plus the record's three, whatever the number of proposals."""
    rows = session.execute(text(_PROPOSALS), {"id": project_id}).mappings().all()
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    milestones: dict[uuid.UUID, list[ProposedMilestone]] = {i: [] for i in ids}
    for m in session.execute(text(_MILESTONES), {"ids": ids}).mappings():
        milestones[m["proposal_id"]].append(ProposedMilestone(**{k: v for k, v in m.items() if k != "proposal_id"}))
    files: dict[uuid.UUID, list[ProposalFileRow]] = {i: [] for i in ids}
    for f in session.execute(text(_FILES), {"ids": ids}).mappings():
        files[f["proposal_id"]].append(ProposalFileRow(**{k: v for k, v in f.items() if k != "proposal_id"}))
    records = contractor_records(session, [r["contractor_id"] for r in rows])
    return [
        ProposalView(
            **{**r, "status": ProposalStatus(r["status"])},
            milestones=milestones[r["id"]],
            files=files[r["id"]],
            record=records[r["contractor_id"]],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ProposalFileData:
    id: uuid.UUID
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    data: bytes


def proposal_file(session: Session, project_id: uuid.UUID, file_id: uuid.UUID) -> ProposalFileData | None:
    """A file attached to a proposal of this project, with its bytes; None when there is none, or RLS hides it
    (another organization's, or, for a contractor's user, a competitor's)."""
    r = (
        session.execute(
            text(
                """
                select f.id, f.file_name, f.content_type, f.size_bytes, f.sha256, f.data
                  from proposal_files f
                  join proposals q on q.org_id = f.org_id and q.id = f.proposal_id
                 where f.id = :file_id and q.project_id = :project_id
                """
            ),
            {"file_id": file_id, "project_id": project_id},
        )
        .mappings()
        .first()
    )
    return ProposalFileData(**{**r, "data": bytes(r["data"])}) if r else None


# --- choices for the project form and the categories page -----------------------------------------------------------


@dataclass(frozen=True)
class CategoryRow:
    id: uuid.UUID
    name: str
    archived_at: datetime | None


def categories(session: Session) -> list[CategoryRow]:
    """Every category of the organization: those in use first, then the archived ones; by name."""
    rows = session.execute(
        text("select id, name, archived_at from project_categories order by archived_at is not null, lower(name), id")
    ).mappings()
    return [CategoryRow(**r) for r in rows]


def category_choices(session: Session, keep: uuid.UUID | None = None) -> list[CategoryRow]:
    """The categories a project may be given: those not archived, and ``keep`` (a project's own) even if it is."""
    return [c for c in categories(session) if c.archived_at is None or c.id == keep]
