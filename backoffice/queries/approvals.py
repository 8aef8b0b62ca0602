"""The read side of payment controls (issue 18): an invoice's approval steps, what waits for an approver, the
policies, holds and delegations pages list, and "why isn't this payable yet" for any set of invoices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.domain import approvals as rules
from backoffice.models import (
    ApprovalDelegation,
    ApprovalPolicy,
    ApprovalPolicyStep,
    Membership,
    User,
)


def staff(session: Session, org_id: uuid.UUID) -> dict[uuid.UUID, tuple[str, str]]:
    """The organization's staff who may be named by a step: user id -> (name, role)."""
    rows = session.execute(
        select(User.id, User.name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.org_id == org_id,
            Membership.accepted_at.is_not(None),
            User.is_active,
            Membership.role.in_([r.value for r in rules.APPROVER_ROLES]),
        )
    ).all()
    return {r.id: (r.name, r.role) for r in rows}


def describe_step(role: str | None, user_ids, members: dict[uuid.UUID, tuple[str, str]]) -> str:
    return rules.step_words(role, sorted(members.get(u, ("a former member", ""))[0] for u in user_ids))


def standing_in_for(session: Session, actor: Actor, today: date) -> list[uuid.UUID]:
    """The people ``actor`` stands in for today (their live delegations to ``actor``)."""
    return list(
        session.execute(
            select(ApprovalDelegation.user_id).where(
                ApprovalDelegation.org_id == actor.org_id,
                ApprovalDelegation.delegate_id == actor.user_id,
                ApprovalDelegation.revoked_at.is_(None),
                ApprovalDelegation.starts_on <= today,
                ApprovalDelegation.ends_on >= today,
            )
        ).scalars()
    )


@dataclass(frozen=True)
class StepView:
    step: int
    words: str  # who may decide it: "anyone in finance", "Ann Lee or Bo Chen"
    status: rules.StepStatus
    decided_by_name: str | None
    on_behalf_of_name: str | None
    decided_at: datetime | None
    reason: str | None
    created_at: datetime
    waiting_since: datetime  # since the step before it was decided (the first: since the invoice was authorized)

    @property
    def who(self) -> str:
        if self.decided_by_name is None:
            return ""
        return self.decided_by_name + (f" for {self.on_behalf_of_name}" if self.on_behalf_of_name else "")


def approval_steps(session: Session, invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[StepView]]:
    """Each invoice's steps in order (none for an invoice approved at once), in words."""
    if not invoice_ids:
        return {}
    rows = (
        session.execute(
            text(
                "select org_id, invoice_id, step, approver_role, approver_ids, status, decided_by, on_behalf_of,"
                "       decided_at, reason, created_at"
                "  from invoice_approvals where invoice_id = any(:ids) order by invoice_id, step"
            ),
            {"ids": list(invoice_ids)},
        )
        .mappings()
        .all()
    )
    names = names_of(session, {p for r in rows for p in (r["decided_by"], r["on_behalf_of"]) if p})
    by_org: dict[uuid.UUID, dict] = {}
    found: dict[uuid.UUID, list[StepView]] = {}
    for r in rows:
        members = by_org.get(r["org_id"]) or by_org.setdefault(r["org_id"], staff(session, r["org_id"]))
        earlier = found.get(r["invoice_id"])
        since = (earlier[-1].decided_at if earlier else None) or r["created_at"]
        found.setdefault(r["invoice_id"], []).append(
            StepView(
                r["step"],
                describe_step(r["approver_role"], r["approver_ids"], members),
                rules.StepStatus(r["status"]),
                names.get(r["decided_by"]) if r["decided_by"] else None,
                names.get(r["on_behalf_of"]) if r["on_behalf_of"] else None,
                r["decided_at"],
                r["reason"],
                r["created_at"],
                since,
            )
        )
    return found


def names_of(session: Session, user_ids) -> dict[uuid.UUID, str]:
    ids = [u for u in user_ids if u]
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def steps_left(steps: list[StepView]) -> list[str]:
    """The words of the steps still waiting: "step 2 of 3, anyone in finance"."""
    total = len(steps)
    return [f"step {s.step} of {total}, {s.words}" for s in steps if s.status == rules.StepStatus.WAITING]


# --- the approvals queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    invoice_id: uuid.UUID
    invoice_number: str
    step: int
    steps_total: int
    step_words: str
    waiting_since: datetime
    currency: str
    gross_minor: int
    net_minor: int
    kind: str
    description: str
    contractor_name: str
    engagement_id: uuid.UUID
    engagement_title: str
    milestone_id: uuid.UUID | None
    milestone_title: str | None
    deliverable: str | None
    evidence_count: int
    authorized_by_name: str
    authorized_at: datetime
    on_behalf_of: uuid.UUID | None
    on_behalf_of_name: str | None
    earlier: list[StepView]


QUEUE_LIMIT = 200

_QUEUE = """
select a.invoice_id, a.step, a.approver_role, a.approver_ids,
       coalesce((select p.decided_at from invoice_approvals p
                  where p.org_id = a.org_id and p.invoice_id = a.invoice_id and p.step = a.step - 1),
                a.created_at) as waiting_since,
       (select count(*) from invoice_approvals n
         where n.org_id = a.org_id and n.invoice_id = a.invoice_id) as steps_total,
       i.invoice_number, i.currency, i.gross_minor, i.net_minor, i.kind, i.description, i.authorized_by,
       i.authorized_at, i.milestone_id, i.engagement_id, e.title as engagement_title, c.legal_name as contractor_name,
       m.title as milestone_title, m.deliverable, u.name as authorized_by_name,
       (select count(*) from evidence_files f join submissions s on s.id = f.submission_id and s.org_id = f.org_id
         join reviews r on r.submission_id = s.id and r.org_id = s.org_id
        where r.id = i.review_id and r.org_id = i.org_id) as evidence_count
  from invoice_approvals a
  join invoices i on i.id = a.invoice_id and i.org_id = a.org_id and i.status = 'pending_approval'
  join engagements e on e.id = i.engagement_id and e.org_id = i.org_id
  join contractors c on c.id = i.contractor_id and c.org_id = i.org_id
  left join milestones m on m.id = i.milestone_id and m.org_id = i.org_id
  left join users u on u.id = i.authorized_by
 where a.status = 'waiting'
   and not exists (select 1 from invoice_approvals b where b.org_id = a.org_id and b.invoice_id = a.invoice_id
                                                       and b.step < a.step and b.status = 'waiting')
   and (a.approver_role = any(cast(:roles as text[])) or a.approver_ids && cast(:people as uuid[]))
 order by waiting_since, a.invoice_id
 limit :limit
"""


def waiting_for(session: Session, actor: Actor, today: date) -> list[Waiting]:
    """What waits for ``actor``'s decision, oldest first: each invoice whose next step names them (by role or by
    name) or someone they stand in for today, and which they have not approved already (approvers are distinct)."""
    if actor.role not in rules.APPROVER_ROLES:
        return []
    members = staff(session, actor.org_id)
    principals = sorted(standing_in_for(session, actor, today), key=str)
    roles = {str(actor.role)} | {members[p][1] for p in principals if p in members}
    rows = (
        session.execute(
            text(_QUEUE), {"roles": sorted(roles), "people": [actor.user_id, *principals], "limit": QUEUE_LIMIT}
        )
        .mappings()
        .all()
    )
    earlier = approval_steps(session, [r["invoice_id"] for r in rows])
    decided = _deciders(session, [r["invoice_id"] for r in rows])
    names = {u: n for u, (n, _) in members.items()}
    found = []
    for r in rows:
        deciding_for = None
        people = decided.get(r["invoice_id"], [])
        if not rules.may_approve(r["approver_role"], r["approver_ids"], actor.role, actor.user_id):
            # As services/approvals.deciding_as chooses: the first by id the step names who has not approved it.
            eligible = [
                p
                for p in principals
                if p in members and rules.may_approve(r["approver_role"], r["approver_ids"], members[p][1], p)
            ]
            excluded = {r["authorized_by"], *people}
            deciding_for = next((p for p in eligible if p not in excluded), eligible[0] if eligible else None)
            if deciding_for is None:
                continue
        done = earlier.get(r["invoice_id"], [])
        if rules.distinct_people_refusal(actor.user_id, deciding_for, r["authorized_by"], people):
            continue
        found.append(
            Waiting(
                r["invoice_id"],
                r["invoice_number"],
                r["step"],
                r["steps_total"],
                describe_step(r["approver_role"], r["approver_ids"], members),
                r["waiting_since"],
                r["currency"],
                r["gross_minor"],
                r["net_minor"],
                r["kind"],
                r["description"],
                r["contractor_name"],
                r["engagement_id"],
                r["engagement_title"],
                r["milestone_id"],
                r["milestone_title"],
                r["deliverable"],
                r["evidence_count"],
                r["authorized_by_name"] or "—",
                r["authorized_at"],
                deciding_for,
                names.get(deciding_for),
                [s for s in done if s.status != rules.StepStatus.WAITING],
            )
        )
    return found


def _deciders(session: Session, invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Who decided each invoice's decided steps, and for whom: one statement for the whole queue."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for invoice_id, decided_by, on_behalf_of in session.execute(
        text(
            "select invoice_id, decided_by, on_behalf_of from invoice_approvals"
            " where invoice_id = any(:ids) and status <> 'waiting'"
        ),
        {"ids": invoice_ids},
    ):
        found.setdefault(invoice_id, []).extend(p for p in (decided_by, on_behalf_of) if p)
    return found


# --- the settings pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyView:
    id: uuid.UUID
    name: str
    currency: str
    min_amount_minor: int
    steps: list[str]
    created_by_name: str
    created_at: datetime


def policies(session: Session, org_id: uuid.UUID) -> list[PolicyView]:
    members = staff(session, org_id)
    live = (
        session.execute(
            select(ApprovalPolicy)
            .where(ApprovalPolicy.org_id == org_id, ApprovalPolicy.archived_at.is_(None))
            .order_by(ApprovalPolicy.currency, ApprovalPolicy.min_amount_minor)
        )
        .scalars()
        .all()
    )
    steps: dict[uuid.UUID, list[str]] = {}
    for s in session.execute(
        select(ApprovalPolicyStep)
        .where(ApprovalPolicyStep.policy_id.in_([p.id for p in live]))
        .order_by(ApprovalPolicyStep.policy_id, ApprovalPolicyStep.step)
    ).scalars():
        steps.setdefault(s.policy_id, []).append(describe_step(s.approver_role, s.approver_ids, members))
    names = names_of(session, {p.created_by for p in live})
    return [
        PolicyView(
            p.id,
            p.name,
            p.currency,
            p.min_amount_minor,
            steps.get(p.id, []),
            names.get(p.created_by, "—"),
            p.created_at,
        )
        for p in live
    ]


@dataclass(frozen=True)
class DelegationView:
    id: uuid.UUID
    user_name: str
    delegate_name: str
    starts_on: date
    ends_on: date
    mine: bool


def delegations(session: Session, actor: Actor, today: date) -> list[DelegationView]:
    """Live delegations that have not ended: the actor's own, and those naming the actor; an admin sees all."""
    where = [ApprovalDelegation.revoked_at.is_(None), ApprovalDelegation.ends_on >= today]
    if str(actor.role) != "admin":
        where.append((ApprovalDelegation.user_id == actor.user_id) | (ApprovalDelegation.delegate_id == actor.user_id))
    rows = (
        session.execute(select(ApprovalDelegation).where(*where).order_by(ApprovalDelegation.starts_on)).scalars().all()
    )
    names = names_of(session, {p for d in rows for p in (d.user_id, d.delegate_id)})
    return [
        DelegationView(
            d.id,
            names.get(d.user_id, "—"),
            names.get(d.delegate_id, "—"),
            d.starts_on,
            d.ends_on,
            d.user_id == actor.user_id,
        )
        for d in rows
    ]


def staff_choices(session: Session, org_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """Who a step or a delegation may name: (id, "Name · Role"), by name."""
    from backoffice.domain.roles import Role

    return sorted(((u, f"{n} · {Role(r).label}") for u, (n, r) in staff(session, org_id).items()), key=lambda x: x[1])
