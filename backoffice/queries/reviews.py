"""Read side of evidence and review: the review queue, and everything the milestone page shows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.domain.completion import BillingMode, final_amount
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.evidence import PREVIEWABLE
from backoffice.domain.invoices import withheld_bps
from backoffice.domain.milestone_status import ShownStatus, decision_status, shown_status
from backoffice.domain.reviews import Authorization, Decision, authorization
from backoffice.models import EvidenceFile
from backoffice.queries.paging import Cursor, Keyset, KeysetPage

QUEUE_PAGE = 50


@dataclass(frozen=True)
class QueueRow:
    milestone_id: uuid.UUID
    title: str
    amount_minor: int
    due_date: date
    engagement_id: uuid.UUID
    engagement_title: str
    currency: str
    contractor_name: str
    owner_name: str | None
    revision: int
    submitted_at: datetime
    submitted_by_name: str | None
    file_count: int
    link_count: int
    waited_days: int
    waiting_since: datetime  # the milestone's move to submitted: the queue's order


# The queue is what this person may decide on now: submitted work on an engagement where work is reviewed
# (reviewable) that they run (can_decide). Both are the SQL twins of the domain's rules (sql/rules.sql,
# held equal by tests/integration/test_rule_parity.py), so the queue and the review service cannot disagree
# about whose turn it is. They inline: the planner sees plain comparisons.
_DECIDES = "reviewable(e.status) and can_decide(cast(:role as text), :user_id, e.owner_user_id)"
_DECIDABLE = f"m.status = 'submitted' and {_DECIDES}"
# The page and the count also name the organization outright (RLS scopes them anyway): compared with a value
# known only at run time, the planner guesses an organization at a 200th of the rows and joins every
# engagement first (80 ms at 20,000 waiting); with the value it walks the waiting milestones in order. The
# engagement's part is a subquery per milestone, so the walk stops after one page.


# The queue's order: how long the work has waited, from when its milestone moved to submitted (stamped by the
# database on that move and kept through change orders: revision 0021), then the milestone's id. The partial
# (org_id, submitted_at, id) index of submitted milestones walks it.
QUEUE_KEYSET = Keyset(("m.submitted_at", "m.id"), (datetime, uuid.UUID))


def review_queue(
    session: Session, actor: Actor, *, cursor: Cursor | None = None, limit: int = QUEUE_PAGE
) -> KeysetPage:
    """Submitted milestones ``actor`` may decide on, the longest-waiting first, a page at a time: a project
    owner's own engagements, every engagement for an admin, nothing for anyone else. The page is picked
    first, from the milestones and their engagements alone; the names, the latest submission and its
    evidence count are read for those rows only."""
    condition, order, key_params = QUEUE_KEYSET.clause(cursor)
    rows = [
        QueueRow(**r)
        for r in session.execute(
            text(f"""
        with page as materialized (
          select m.id, m.org_id, m.title, m.amount_minor, m.due_date, m.submitted_at, m.engagement_id, m.contractor_id
            from milestones m
           where m.status = 'submitted' and m.org_id = :org and {condition}
             and (select {_DECIDES} from engagements e where e.id = m.engagement_id and e.org_id = m.org_id)
           order by {order}
           limit :limit)
        select m.id as milestone_id, m.title, m.amount_minor, m.due_date, e.id as engagement_id,
               e.title as engagement_title, e.currency, c.legal_name as contractor_name, o.name as owner_name,
               s.revision, s.submitted_at, u.name as submitted_by_name, m.submitted_at as waiting_since,
               (select count(*) from evidence_files f where f.submission_id = s.id and f.org_id = s.org_id)
                 as file_count,
               jsonb_array_length(s.links) as link_count,
               (current_date - s.submitted_at::date) as waited_days
          from page m
          join engagements e on e.id = m.engagement_id and e.org_id = m.org_id
          join contractors c on c.id = m.contractor_id and c.org_id = m.org_id
          left join users o on o.id = e.owner_user_id
          join lateral (select * from submissions s where s.milestone_id = m.id and s.org_id = m.org_id
                         order by s.revision desc limit 1) s on true
          left join users u on u.id = s.submitted_by
         order by {order}
    """),
            {"role": actor.role.value, "user_id": actor.user_id, "org": actor.org_id, "limit": limit + 1} | key_params,
        ).mappings()
    ]
    return KeysetPage.build(rows, cursor, limit, key=lambda r: (r.waiting_since, r.milestone_id))


def next_in_queue(session: Session, actor: Actor, after_milestone_id: uuid.UUID | None) -> uuid.UUID | None:
    """The milestone to open after ``after_milestone_id`` in the review queue's order (what waited longest
    after it), or, past the end, the first one still waiting (work skipped earlier); never that milestone itself,
    and None when nothing else waits for ``actor``. Decided or not, the milestone keeps its place: its move to
    submitted is stamped once and kept."""
    params = {"role": actor.role.value, "user_id": actor.user_id, "org": actor.org_id, "after": after_milestone_id}
    waiting = (
        "select m.id from milestones m"
        " where m.status = 'submitted' and m.org_id = :org and m.id is distinct from :after"
        f"   and (select {_DECIDES} from engagements e where e.id = m.engagement_id and e.org_id = m.org_id)"
    )
    # Two walks of the queue's index rather than one sort that wraps around: each stops at its first row.
    later = session.execute(
        text(
            f"{waiting} and (m.submitted_at, m.id) >"
            "   (select a.submitted_at, a.id from milestones a where a.id = :after)"
            " order by m.submitted_at, m.id limit 1"
        ),
        params,
    ).scalar_one_or_none()
    if later is not None:
        return later
    return session.execute(text(f"{waiting} order by m.submitted_at, m.id limit 1"), params).scalar_one_or_none()


COUNT_CAP = 99  # the badge says "99+" past it: the count stops there, whatever the organization's size (999 cost 5 ms)


def queue_count(session: Session, actor: Actor) -> int:
    """How many submitted milestones wait for ``actor``'s decision (the review queue's length), counted up
    to COUNT_CAP + 1."""
    return session.execute(
        text(
            "select count(*) from (select 1 from milestones m"
            "  join engagements e on e.id = m.engagement_id and e.org_id = m.org_id"
            f" where {_DECIDABLE} and m.org_id = :org and e.org_id = :org limit {COUNT_CAP + 1}) waiting"
        ),
        {"role": actor.role.value, "user_id": actor.user_id, "org": actor.org_id},
    ).scalar_one()


@dataclass(frozen=True)
class FileView:
    id: uuid.UUID
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str

    @property
    def previewable(self) -> bool:
        """Shown on the page: an image inline, a PDF in a frame (web/evidence.py serves both for inline viewing)."""
        return self.content_type in PREVIEWABLE

    @property
    def is_image(self) -> bool:
        return self.previewable and self.content_type.startswith("image/")


@dataclass(frozen=True)
class ReviewView:
    decision: Decision
    reason: str | None
    partial_policy: str | None
    milestone_amount_minor: int
    approved_amount_minor: int | None
    evidence_sha256: list[str]
    reviewed_by_name: str | None
    reviewed_at: datetime

    @property
    def shown(self) -> ShownStatus:
        """The decision in the words every page uses (domain/milestone_status)."""
        return decision_status(self.decision, self.partial_policy)


@dataclass(frozen=True)
class RevisionView:
    id: uuid.UUID
    revision: int
    note: str
    links: list[str]
    submitted_at: datetime
    submitted_by_name: str | None
    files: list[FileView] = field(default_factory=list)
    review: ReviewView | None = None


@dataclass(frozen=True)
class MilestoneDetail:
    id: uuid.UUID
    seq: int
    title: str
    deliverable: str
    amount_minor: int
    due_date: date
    status: MilestoneStatus
    engagement_id: uuid.UUID
    engagement_title: str
    engagement_status: EngagementStatus
    sow_reference: str | None
    currency: str
    retainage_bps: int
    payment_terms_days: int
    contractor_id: uuid.UUID
    contractor_name: str
    owner_user_id: uuid.UUID
    owner_name: str | None
    service_fee_bps: int
    retainage_released: bool  # later approvals withhold none
    invoice_id: uuid.UUID | None
    invoice_number: str | None
    invoice_status: str | None
    revisions: list[RevisionView]  # newest first
    # Completion billing (issue 20): a task authorizes nothing by itself; the last open one the final payment.
    billing_mode: str = "milestone"
    contract_value_minor: int | None = None
    billed_minor: int = 0  # Σ gross of the engagement's live advance, task and final invoices
    others_open: int = 0  # the engagement's other tasks still planned or submitted
    waiting_numbers: list[str] | None = None  # its payments awaiting approval (the last task waits for them)

    @property
    def is_task(self) -> bool:
        return self.billing_mode == BillingMode.COMPLETION

    @property
    def authorizes_final(self) -> bool:
        """A task whose approval authorizes the final payment: the last one open."""
        return self.is_task and self.others_open == 0

    @property
    def authorized_gross(self) -> int | None:
        """What approving it authorizes (gross), or None for a task that authorizes nothing by itself."""
        if not self.is_task:
            return self.amount_minor
        if self.authorizes_final:
            return final_amount(self.contract_value_minor or 0, self.billed_minor)
        return None

    @property
    def latest(self) -> RevisionView | None:
        return self.revisions[0] if self.revisions else None

    @property
    def shown(self) -> ShownStatus:
        """The status in the words every page uses: why it was sent back, or that it was partly approved."""
        review = self.latest.review if self.latest else None
        return shown_status(self.status, review and review.decision, review and review.partial_policy)

    @property
    def awaiting_review(self) -> bool:
        return self.status == MilestoneStatus.SUBMITTED and self.latest is not None and self.latest.review is None

    @property
    def returned(self) -> ReviewView | None:
        """The decision that sent the work back, while the contractor has not resubmitted."""
        latest = self.latest
        if (
            self.status == MilestoneStatus.PLANNED
            and latest
            and latest.review
            and latest.review.decision != Decision.APPROVE
        ):
            return latest.review
        return None

    @property
    def overdue(self) -> bool:
        return self.status in (MilestoneStatus.PLANNED, MilestoneStatus.SUBMITTED) and self.due_date < date.today()

    def approval(self, today: date, part: int | None = None) -> Authorization:
        """What approving today would authorize under the engagement's terms: the milestone's amount (or the
        ``part`` a split partial approves); for a task, the final payment when it is the last open one, or else what
        invoicing it would (approving authorizes nothing)."""
        return authorization(
            part or self.authorized_gross or self.amount_minor,
            withheld_bps(self.retainage_bps, released=self.retainage_released),
            self.payment_terms_days,
            today,
            self.service_fee_bps,
        )


def milestone_detail(session: Session, milestone_id: uuid.UUID) -> MilestoneDetail | None:
    """The milestone, its engagement's terms and every revision with its files and decision; None when
    RLS hides it (another organization's or contractor's, or a draft's for a contractor)."""
    r = (
        session.execute(
            text("""
        select m.id, m.seq, m.title, m.deliverable, m.amount_minor, m.due_date, m.status, m.engagement_id,
               e.title as engagement_title, e.status as engagement_status, e.sow_reference, e.currency,
               e.retainage_bps, e.payment_terms_days, m.contractor_id, c.legal_name as contractor_name,
               e.owner_user_id, o.name as owner_name, e.service_fee_bps,
               exists (select 1 from invoices ri where ri.engagement_id = e.id and ri.kind = 'retainage_release'
                                     and ri.voided_at is null)
                 as retainage_released,
               coalesce(i.id, ti.id) as invoice_id, coalesce(i.invoice_number, ti.invoice_number) as invoice_number,
               coalesce(i.status, ti.status) as invoice_status,
               e.billing_mode, e.contract_value_minor,
               case when e.billing_mode = 'completion' then
                 (select coalesce(sum(b.gross_minor), 0) from invoices b
                   where b.engagement_id = e.id and b.kind in ('advance', 'completion', 'final')
                     and b.voided_at is null)
               else 0 end::bigint as billed_minor,
               case when e.billing_mode = 'completion' then
                 (select count(*) from milestones o
                   where o.engagement_id = e.id and o.id <> m.id and o.status in ('planned', 'submitted'))
               else 0 end::int as others_open,
               case when e.billing_mode = 'completion' then
                 array(select w.invoice_number from invoices w
                        where w.engagement_id = e.id and w.status = 'pending_approval' order by w.number)
               end as waiting_numbers
          from milestones m
          left join invoices i on i.milestone_id = m.id and i.voided_at is null
          left join lateral (
            select bi.id, bi.invoice_number, bi.status from invoice_tasks t join invoices bi on bi.id = t.invoice_id
             where t.milestone_id = m.id and t.voided_at is null
          ) ti on true
          join engagements e on e.id = m.engagement_id
          join contractors c on c.id = m.contractor_id
          left join users o on o.id = e.owner_user_id
         where m.id = :id
    """),
            {"id": milestone_id},
        )
        .mappings()
        .first()
    )
    if r is None:
        return None
    return MilestoneDetail(
        **{**r, "status": MilestoneStatus(r["status"]), "engagement_status": EngagementStatus(r["engagement_status"])},
        revisions=_revisions(session, milestone_id),
    )


def _revisions(session: Session, milestone_id) -> list[RevisionView]:
    rows = (
        session.execute(
            text("""
        select s.id, s.revision, s.note, s.links, s.submitted_at, su.name as submitted_by_name,
               r.decision, r.reason, r.partial_policy, r.milestone_amount_minor, r.approved_amount_minor,
               r.evidence_sha256, r.reviewed_at, ru.name as reviewed_by_name
          from submissions s
          left join users su on su.id = s.submitted_by
          left join reviews r on r.submission_id = s.id
          left join users ru on ru.id = r.reviewed_by
         where s.milestone_id = :id
         order by s.revision desc
    """),
            {"id": milestone_id},
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    files: dict[uuid.UUID, list[FileView]] = {}
    for f in session.execute(
        text("""
        select f.id, f.submission_id, f.file_name, f.content_type, f.size_bytes, f.sha256
          from evidence_files f where f.submission_id = any(:ids) order by f.submission_id, f.position
    """),
        {"ids": [r["id"] for r in rows]},
    ).mappings():
        files.setdefault(f["submission_id"], []).append(
            FileView(f["id"], f["file_name"], f["content_type"], f["size_bytes"], f["sha256"])
        )
    return [
        RevisionView(
            id=r["id"],
            revision=r["revision"],
            note=r["note"],
            links=list(r["links"]),
            submitted_at=r["submitted_at"],
            submitted_by_name=r["submitted_by_name"],
            files=files.get(r["id"], []),
            review=None
            if r["decision"] is None
            else ReviewView(
                Decision(r["decision"]),
                r["reason"],
                r["partial_policy"],
                r["milestone_amount_minor"],
                r["approved_amount_minor"],
                list(r["evidence_sha256"]),
                r["reviewed_by_name"],
                r["reviewed_at"],
            ),
        )
        for r in rows
    ]


def evidence_file(session: Session, file_id: uuid.UUID) -> EvidenceFile | None:
    """The file's record as RLS lets the caller see it (None for another org's or contractor's)."""
    return session.execute(select(EvidenceFile).where(EvidenceFile.id == file_id)).scalar_one_or_none()
