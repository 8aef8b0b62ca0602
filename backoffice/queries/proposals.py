"""What a contractor's user sees of projects and proposals (issue 19): the projects open to its proposals, its own
proposals and where each stands, one project as it sees it, and its own proposal with milestones and files.

Read as the contractor: row-level security already keeps a contractor to the projects it may propose on (open to
all, invited, or proposed on) and to its own proposals (sql/projects.sql). The queries name the contractor and the
organization too, so the planner walks that contractor's rows by index, and so a query reused by another role
could not widen what a page shows. Whether a project takes proposals, and why it refuses one, is the domain's
(domain.projects.takes_proposals, proposal_refusal) against the database's day (queries.projects.today).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.domain import projects as rules
from backoffice.domain.completion import BillingMode, advance_amount, task_word
from backoffice.domain.projects import ProposalRefusal
from backoffice.models import Proposal, ProposalFile, ProposalMilestone
from backoffice.queries.paging import Cursor, Keyset, KeysetPage
from backoffice.queries.projects import today
from backoffice.services.validation import parse_id

# Both lists of the contractor's page are paged by keys (queries/paging.py), each with its own links: a limit
# without a next page hid whatever lay past it, and a contractor proposing for years outgrows any limit.
OPEN_PER_PAGE = 25
PROPOSALS_PER_PAGE = 25


@dataclass(frozen=True)
class OpenProject:
    """A project still open (status) that this contractor has not proposed on."""

    id: uuid.UUID
    title: str
    category: str
    deadline: date
    budget_minor: int | None
    currency: str
    takes_proposals: bool
    refusal: ProposalRefusal | None  # None: it may propose now


@dataclass(frozen=True)
class OwnProposal:
    """One of the contractor's proposals, with its project and, once accepted, the engagement it became."""

    id: uuid.UUID
    project_id: uuid.UUID
    project_title: str
    category: str
    deadline: date
    project_status: str
    currency: str
    price_minor: int
    status: str
    submitted_at: datetime
    engagement_id: uuid.UUID | None
    takes_proposals: bool  # it may still be edited or withdrawn (while submitted)


@dataclass(frozen=True)
class ProjectView:
    """A project as a contractor sees it; ``refusal`` says why it may not propose now (None: it may)."""

    id: uuid.UUID
    title: str
    description: str
    category: str
    deadline: date
    budget_minor: int | None
    currency: str
    billing_mode: str
    advance_bps: int | None  # a completion project's advance (domain.completion), None under milestone billing
    status: str
    audience: str
    retainage_bps: int  # the organization's terms an award gives the contract (services/awards.py)
    payment_terms_days: int
    takes_proposals: bool
    refusal: ProposalRefusal | None

    @property
    def billing_label(self) -> str:
        return rules.BILLING_MODES.get(self.billing_mode, self.billing_mode)

    @property
    def completion(self) -> bool:
        """Its contract is billed on completion: an advance when it is awarded, tasks that share the rest."""
        return self.billing_mode == BillingMode.COMPLETION

    def task_word(self, *, plural: bool = False, capital: bool = False) -> str:
        """What its milestones are called ("tasks" under completion billing)."""
        return task_word(self.billing_mode, plural=plural, capital=capital)

    def advance_on(self, price_minor: int) -> int | None:
        """The advance an award at ``price_minor`` authorizes at once, or None under milestone billing."""
        return None if self.advance_bps is None else advance_amount(price_minor, self.advance_bps)

    @property
    def may_withdraw(self) -> bool:
        """A waiting proposal on it may still be withdrawn (domain.projects.may_withdraw)."""
        return rules.may_withdraw(self.status)


@dataclass(frozen=True)
class FileInfo:
    id: uuid.UUID
    file_name: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class ProposalDetail:
    proposal: Proposal
    milestones: list[ProposalMilestone]
    files: list[FileInfo]
    engagement_id: uuid.UUID | None

    @property
    def editable(self) -> bool:
        return self.proposal.status in rules.EDITABLE_PROPOSAL


# Taking proposals first, soonest deadline first, then those whose deadline passed without an award yet. The
# first key is the day's split, so a page is sorted rather than read in index order (EXPLAIN: index scan of
# projects_list_idx on org_id and status = 'open', then a sort). That sorts the organization's open projects only,
# a set awards and cancellations keep short, never its history; it is paged anyway, since a limit without a next
# page hid the rest. A link made yesterday still reads the rows after its key in today's order.
OPEN_KEYSET = Keyset(("(p.deadline < :today)::int", "p.deadline", "p.id"), (int, date, uuid.UUID))

# The open projects this contractor sees (RLS: open to all, invited, or proposed on) and has not proposed on.
_OPEN_FROM = """
  from projects p
 where p.org_id = :org and p.status = 'open'
   and not exists (select 1 from proposals q
                    where q.org_id = p.org_id and q.project_id = p.id and q.contractor_id = :contractor)
"""
_INVITED = """exists (select 1 from project_invitations i
                where i.org_id = p.org_id and i.project_id = p.id and i.contractor_id = :contractor) as invited"""


def _open_sql(condition: str, order: str) -> str:
    # The page's ids first; the category's name is joined to those rows only.
    return f"""
with page as materialized (
  select p.id {_OPEN_FROM} and {condition} order by {order} limit :limit
)
select p.id, p.title, c.name as category, p.deadline, p.budget_minor, p.currency, p.status, p.audience,
       {_INVITED}
  from page x
  join projects p on p.org_id = :org and p.id = x.id
  join project_categories c on c.org_id = p.org_id and c.id = p.category_id
 order by {order}
"""


# What the domain needs to say whether the contractor may propose, for every open project (the home page's count).
_OPEN_TERMS = f"select p.status, p.deadline, p.audience, {_INVITED} {_OPEN_FROM}"

# Newest first, read in the order of proposals_contractor_idx (org_id, contractor_id, submitted_at desc): the plan
# (PostgreSQL 18, EXPLAIN) is an index scan starting at "submitted_at <= key" and an incremental sort of equal times
# only, so page 2,000 costs what page 1 does. The id breaks ties, running the same way as the time (Keyset needs
# one direction; the list used to take ties by ascending id); the index needs no id column for that. The page is
# picked first from the contractor's proposals alone, and only its rows are joined to their projects: joined before
# the limit, the planner read every project of the organization and put each through the contractor's policy
# (bench/dataset.py at scale 1.0, a contractor with 408 proposals among 2,000 projects, median of 20 runs as the
# contractor through RLS: 2.6 ms joined first, 1.2 ms picked first; the demo's contractor 0.7 ms).
MINE_KEYSET = Keyset(("q.submitted_at", "q.id"), (datetime, uuid.UUID), descending=True)

_MINE = """
with page as materialized (
  select q.id from proposals q
   where q.org_id = :org and q.contractor_id = :contractor and {condition}
   order by {order} limit :limit
)
select q.id, q.project_id, p.title as project_title, c.name as category, p.deadline, p.status as project_status,
       p.currency, q.price_minor, q.status, q.submitted_at,
       (select e.id from engagements e where e.org_id = q.org_id and e.proposal_id = q.id) as engagement_id
  from page x
  join proposals q on q.org_id = :org and q.id = x.id
  join projects p on p.org_id = q.org_id and p.id = q.project_id
  join project_categories c on c.org_id = p.org_id and c.id = p.category_id
 order by {order}
"""

_PROJECT = f"""
select p.id, p.title, p.description, c.name as category, p.deadline, p.budget_minor, p.currency, p.billing_mode,
       p.advance_bps, p.status, p.audience, o.default_retainage_bps as retainage_bps, o.payment_terms_days,
       {_INVITED},
       exists (select 1 from proposals q
                where q.org_id = p.org_id and q.project_id = p.id and q.contractor_id = :contractor) as proposed
  from projects p
  join project_categories c on c.org_id = p.org_id and c.id = p.category_id
  join organizations o on o.id = p.org_id
 where p.org_id = :org and p.id = :id
"""


def _columns(cls, row) -> dict:
    """The columns of ``row`` that ``cls`` has a field for."""
    return {f.name: row[f.name] for f in fields(cls) if f.name in row}


def _mine(actor: Actor) -> dict:
    return {"org": actor.org_id, "contractor": actor.contractor_id}


def open_projects(
    session: Session, actor: Actor, *, cursor: Cursor | None = None, per_page: int | None = None
) -> KeysetPage:
    """One page of the open projects this contractor sees and has not proposed on (``OpenProject`` rows), those
    taking proposals first (soonest deadline first), then those whose deadline has passed without an award yet."""
    per_page = per_page or OPEN_PER_PAGE
    day = today(session)
    condition, order, key_params = OPEN_KEYSET.clause(cursor)
    params = {**_mine(actor), **key_params, "today": day, "limit": per_page + 1}
    rows = session.execute(text(_open_sql(condition, order)), params).mappings()
    fetched = [
        OpenProject(
            **_columns(OpenProject, r),
            takes_proposals=rules.takes_proposals(r["status"], r["deadline"], day),
            refusal=rules.proposal_refusal(r["status"], r["deadline"], day, r["audience"], r["invited"], False),
        )
        for r in rows
    ]
    return KeysetPage.build(fetched, cursor, per_page, key=lambda p: (int(p.deadline < day), p.deadline, p.id))


def open_count(session: Session, actor: Actor) -> int:
    """How many projects this contractor may propose on now (the home page's card): every one, not a page's.
    The domain decides for each open project (domain.projects.proposal_refusal), so the rule is not restated in
    SQL; the rows are the organization's open projects only, as few as the page's first sort reads."""
    day = today(session)
    rows = session.execute(text(_OPEN_TERMS), _mine(actor)).mappings()
    return sum(
        1
        for r in rows
        if rules.proposal_refusal(r["status"], r["deadline"], day, r["audience"], r["invited"], False) is None
    )


def own_proposals(
    session: Session, actor: Actor, *, cursor: Cursor | None = None, per_page: int | None = None
) -> KeysetPage:
    """One page of the contractor's proposals (``OwnProposal`` rows), newest first, with the engagement an accepted
    one became."""
    per_page = per_page or PROPOSALS_PER_PAGE
    day = today(session)
    condition, order, key_params = MINE_KEYSET.clause(cursor)
    params = {**_mine(actor), **key_params, "limit": per_page + 1}
    rows = session.execute(text(_MINE.format(condition=condition, order=order)), params).mappings()
    fetched = [
        OwnProposal(**r, takes_proposals=rules.takes_proposals(r["project_status"], r["deadline"], day)) for r in rows
    ]
    return KeysetPage.build(fetched, cursor, per_page, key=lambda q: (q.submitted_at, q.id))


def project_view(session: Session, actor: Actor, project_id) -> ProjectView | None:
    """The project as this contractor sees it, or None when it may not see it (or there is no such project)."""
    row_id = parse_id(project_id)
    r = row_id and session.execute(text(_PROJECT), {**_mine(actor), "id": row_id}).mappings().one_or_none()
    if not r:
        return None
    day = today(session)
    return ProjectView(
        **_columns(ProjectView, r),
        takes_proposals=rules.takes_proposals(r["status"], r["deadline"], day),
        refusal=rules.proposal_refusal(r["status"], r["deadline"], day, r["audience"], r["invited"], r["proposed"]),
    )


def proposal_detail(session: Session, actor: Actor, *, project_id=None, proposal_id=None) -> ProposalDetail | None:
    """The contractor's own proposal (on ``project_id``, or by its id) with its milestones and files, or None."""
    query = select(Proposal).where(Proposal.org_id == actor.org_id, Proposal.contractor_id == actor.contractor_id)
    if proposal_id is not None:
        row_id = parse_id(proposal_id)
        query = query.where(Proposal.id == row_id)
    else:
        row_id = parse_id(project_id)
        query = query.where(Proposal.project_id == row_id)
    proposal = row_id and session.execute(query).scalar_one_or_none()
    if not proposal:
        return None
    milestones = (
        session.execute(
            select(ProposalMilestone)
            .where(ProposalMilestone.org_id == proposal.org_id, ProposalMilestone.proposal_id == proposal.id)
            .order_by(ProposalMilestone.seq)
        )
        .scalars()
        .all()
    )
    files = [
        FileInfo(*r)
        for r in session.execute(
            select(ProposalFile.id, ProposalFile.file_name, ProposalFile.content_type, ProposalFile.size_bytes)
            .where(ProposalFile.org_id == proposal.org_id, ProposalFile.proposal_id == proposal.id)
            .order_by(ProposalFile.position)
        )
    ]
    engagement_id = session.execute(
        text("select id from engagements where org_id = :org and proposal_id = :id"),
        {"org": proposal.org_id, "id": proposal.id},
    ).scalar_one_or_none()
    return ProposalDetail(proposal, list(milestones), files, engagement_id)


def proposal_file(session: Session, file_id) -> ProposalFile | None:
    """A proposal's file, bytes included, as RLS lets the caller see it: a contractor its own proposals' files,
    staff every file of their organization's proposals; None otherwise."""
    row_id = parse_id(file_id)
    return row_id and session.execute(select(ProposalFile).where(ProposalFile.id == row_id)).scalar_one_or_none()
