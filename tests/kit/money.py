"""Shared by the money integration tests: engagements built and approved through the real services
(so every invoice is the one an approval writes), exports and payments as finance would make them, and
the organization's money rows read as the owner role.

A ``Party`` is one contractor's side of a world: the organization, the staff member who owns and
approves its engagements, the contractor and the contractor's user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from backoffice.services import ap_export, engagements, payments, schedule
from backoffice.services.engagements import EngagementInput
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from backoffice.services.submissions import SubmissionInput, submit_work
from kit.engagements import owner_query, sign_in

EVIDENCE = "https://example.com/evidence/album"


@dataclass(frozen=True)
class Party:
    org_id: uuid.UUID
    staff: object  # the Person who owns the engagement and approves its work
    contractor_id: uuid.UUID
    contractor_user: object


def party(world, which: str = "x") -> Party:
    """Contractor X or Y of org A (engagements owned by world.owner), or contractor Z of org B (world.admin_b)."""
    return {
        "x": Party(world.org_a, world.owner, world.contractor_x, world.contractor_x_user),
        "y": Party(world.org_a, world.owner, world.contractor_y, world.contractor_y_user),
        "z": Party(world.org_b, world.admin_b, world.contractor_z, world.contractor_z_user),
    }[which]


def today() -> str:
    """Today as the services and the database date payments (UTC)."""
    return datetime.now(UTC).date().isoformat()


# --- building through the services ------------------------------------------------------------------


def active_engagement(
    act_as,
    admin_engine,
    p: Party,
    amounts=("1,000.00", "2,000.00"),
    *,
    title="Roof",
    retainage="",
    service_fee="",
    terms="",
    currency="",
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An engagement the contractor accepted, with one planned milestone per amount. Empty terms take the
    organization's defaults (10% retainage, 30 days, the org's currency, no fee)."""
    session, actor = sign_in(act_as, p.staff, p.org_id)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(
            contractor_id=str(p.contractor_id),
            title=title,
            owner_user_id=str(p.staff.id),
            retainage=retainage,
            service_fee=service_fee,
            payment_terms_days=terms,
            currency=currency,
        ),
    )
    schedule.save_schedule(
        session,
        actor,
        e.id,
        ScheduleInput(
            rows=[
                RowInput(
                    title=f"{title} part {n}", deliverable=f"Deliverable {n}", amount=amount, due_date="2030-01-15"
                )
                for n, amount in enumerate(amounts, start=1)
            ]
        ),
    )
    engagements.perform(session, actor, e.id, "send")
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    engagements.perform(session, actor, e.id, "accept")
    ids = [
        r["id"]
        for r in owner_query(admin_engine, "select id from milestones where engagement_id = :e order by seq", e=e.id)
    ]
    return e.id, ids


def submit(act_as, p: Party, milestone_id, note: str = "Done, see the album."):
    session, actor = sign_in(act_as, p.contractor_user, p.org_id)
    return submit_work(session, actor, milestone_id, SubmissionInput(note=note, links=EVIDENCE))


def decide_as(
    act_as, person, org_id, milestone_id, submission_id, decision: str = "approve", reason: str = "", **extra
):
    session, actor = sign_in(act_as, person, org_id)
    return decide(
        session,
        actor,
        milestone_id,
        DecisionInput(submission_id=str(submission_id), decision=decision, reason=reason, **extra),
    )


def approve(act_as, admin_engine, p: Party, milestone_id, approver=None) -> dict:
    """Submit the milestone as the contractor and approve it (as the engagement's owner unless told):
    the invoice the approval wrote."""
    sub = submit(act_as, p, milestone_id)
    decide_as(act_as, approver or p.staff, p.org_id, milestone_id, sub.id, "approve")
    return invoice_of_milestone(admin_engine, milestone_id)


def approved_invoices(
    act_as, admin_engine, p: Party, amounts=("1,000.00", "2,000.00"), approver=None, **terms
) -> tuple[uuid.UUID, list[dict]]:
    """An engagement whose every milestone is approved: (engagement id, its invoices in milestone order)."""
    engagement_id, milestones = active_engagement(act_as, admin_engine, p, amounts, **terms)
    return engagement_id, [approve(act_as, admin_engine, p, m, approver) for m in milestones]


def complete(act_as, p: Party, engagement_id) -> None:
    session, actor = sign_in(act_as, p.staff, p.org_id)
    engagements.perform(session, actor, engagement_id, "complete")


def export(act_as, person, org_id, invoice_ids=(), **selection):
    session, actor = sign_in(act_as, person, org_id)
    return ap_export.create_batch(
        session, actor, ap_export.Selection(invoice_ids=tuple(str(i) for i in invoice_ids), **selection)
    )


def pay(
    act_as, person, org_id, invoice_id, *, paid_at: str | None = None, reference: str = "ACH 0001", method: str = "ach"
):
    session, actor = sign_in(act_as, person, org_id)
    return payments.record_payment(
        session, actor, invoice_id, payments.PaymentInput(paid_at or today(), reference, method)
    )


def set_org(admin_engine, org_id, **columns) -> None:
    """Change an organization's settings as the owner role (partial_policy, segregation_of_duties, ...)."""
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    with admin_engine.begin() as conn:
        conn.execute(text(f"update organizations set {sets} where id = :o"), {**columns, "o": org_id})


# --- reading as the owner role ----------------------------------------------------------------------


def numbered(admin_engine, org_id, n: int) -> str:
    """The organization's n-th invoice number: its prefix (taken from its name unless changed), six digits."""
    (org,) = owner_query(admin_engine, "select invoice_prefix from organizations where id = :o", o=org_id)
    return f"{org['invoice_prefix']}-{n:06d}"


def invoice_of_milestone(admin_engine, milestone_id) -> dict | None:
    rows = owner_query(
        admin_engine, "select * from invoices where milestone_id = :m order by voided_at nulls first", m=milestone_id
    )
    return rows[0] if rows else None


def invoice(admin_engine, invoice_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from invoices where id = :i", i=invoice_id)
    return row


def invoices_of(admin_engine, engagement_id) -> list[dict]:
    return owner_query(admin_engine, "select * from invoices where engagement_id = :e order by number", e=engagement_id)


def payments_of(admin_engine, invoice_id) -> list[dict]:
    return owner_query(admin_engine, "select * from payments where invoice_id = :i", i=invoice_id)


def ledger_of(admin_engine, invoice_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from ledger_entries where invoice_id = :i order by event, account", i=invoice_id
    )


def events(admin_engine, org_id, action: str) -> list[dict]:
    return owner_query(
        admin_engine, "select * from audit_events where org_id = :o and action = :a order by seq", o=org_id, a=action
    )


def money_state(admin_engine, *org_ids) -> dict:
    """Every money row (and what a decision writes with it) of the given organizations: a refused call
    or statement must leave all of it exactly as it was, counters included (numbers are gapless)."""
    o = {"o": list(org_ids)}

    def q(sql):
        return owner_query(admin_engine, sql, **o)

    return {
        "invoices": q("select * from invoices where org_id = any(:o) order by id"),
        "payments": q("select * from payments where org_id = any(:o) order by id"),
        "batches": q("select * from ap_export_batches where org_id = any(:o) order by id"),
        "chunks": q(
            "select batch_id, chunk_no, md5(data) from ap_export_chunks"
            " where org_id = any(:o) order by batch_id, chunk_no"
        ),
        "ledger": q("select * from ledger_entries where org_id = any(:o) order by id"),
        "counters": q("select * from org_counters where org_id = any(:o) order by org_id, counter"),
        "milestones": q("select * from milestones where org_id = any(:o) order by id"),
        "reviews": q("select * from reviews where org_id = any(:o) order by id"),
        "orgs": q("select id, invoice_prefix, segregation_of_duties from organizations where id = any(:o) order by id"),
        "events": q("select org_id, seq, action from audit_events where org_id = any(:o) order by org_id, seq"),
    }
