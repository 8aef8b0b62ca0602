"""Approved payments for the money pages' tests, built as the app builds them: an engagement created,
scheduled, sent and accepted through the services, work submitted by the contractor's user and approved
by the project owner (or an admin) through reviews.decide, which writes the invoice. ``approve_milestones``
approves many at once and can date the approvals back (for invoices issued in the past). The database is
read back as the owner role."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import text

from backoffice.services import engagements as engagement_service
from backoffice.services import schedule
from backoffice.services import submissions as submission_service
from backoffice.services.ap_export import Selection, create_batch
from backoffice.services.payments import PaymentInput, record_payment
from backoffice.services.reviews import DecisionInput, decide
from backoffice.services.schedule import RowInput, ScheduleInput
from kit.engagements import acting, contractor_user, perform
from kit.milestones import move_milestone

# Two milestones with odd cents: 10% retainage of $1,234.55 is $123.455, rounded half up to $123.46.
ODD_ROWS = (
    ("Design", "Floor plans", "1,234.55", "2030-01-15"),
    ("Build", "Structure complete", "2,000.05", "2030-03-01"),
)


def active_engagement(
    app_sessions,
    world,
    *,
    title="Kitchen renovation",
    rows=ODD_ROWS,
    by=None,
    org_id=None,
    contractor_id=None,
    currency="",
    retainage="",
    terms="",
    fee="",
    sow_reference="",
) -> uuid.UUID:
    """An engagement with these terms (empty: the organization's defaults), scheduled, sent by ``by``
    (the project owner by default) and accepted by its contractor's user."""
    by = by or world.owner
    org_id = org_id or world.org_a
    contractor_id = contractor_id or world.contractor_x
    with acting(app_sessions, by, org_id) as (session, actor):
        e = engagement_service.create_engagement(
            session,
            actor,
            engagement_service.EngagementInput(
                contractor_id=str(contractor_id),
                title=title,
                currency=currency,
                retainage=retainage,
                payment_terms_days=terms,
                service_fee=fee,
                sow_reference=sow_reference,
                owner_user_id="" if by == world.owner else str(by.id),
            ),
        )
        schedule.save_schedule(
            session,
            actor,
            e.id,
            ScheduleInput(rows=[RowInput(title=t, deliverable=d, amount=a, due_date=due) for t, d, a, due in rows]),
        )
        engagement_id = e.id
    perform(app_sessions, by, org_id, engagement_id, "send")
    perform(app_sessions, contractor_user(world, contractor_id), org_id, engagement_id, "accept")
    return engagement_id


def milestone_ids(admin_engine, engagement_id) -> list[uuid.UUID]:
    with admin_engine.connect() as conn:
        return list(
            conn.execute(
                text("select id from milestones where engagement_id = :e order by seq"), {"e": engagement_id}
            ).scalars()
        )


def approve(app_sessions, world, milestone_id, *, by=None, org_id=None, contractor=None) -> uuid.UUID:
    """The contractor's user submits the milestone with a link; ``by`` (the project owner by default)
    approves it. Returns the invoice the approval wrote."""
    org_id = org_id or world.org_a
    with acting(app_sessions, contractor or world.contractor_x_user, org_id) as (session, actor):
        submission = submission_service.submit_work(
            session,
            actor,
            milestone_id,
            submission_service.SubmissionInput(note="Done, see the link.", links="https://example.com/work", files=[]),
        )
        submission_id = submission.id
    with acting(app_sessions, by or world.owner, org_id) as (session, actor):
        review = decide(
            session, actor, milestone_id, DecisionInput(submission_id=str(submission_id), decision="approve")
        )
        return session.execute(text("select id from invoices where review_id = :r"), {"r": review.id}).scalar_one()


def approved_engagement(
    app_sessions, admin_engine, world, *, by=None, approver=None, contractor_id=None, **terms
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An accepted engagement whose every milestone is approved through the services; (engagement, invoices)."""
    contractor_id = contractor_id or world.contractor_x
    eid = active_engagement(app_sessions, world, by=by, contractor_id=contractor_id, **terms)
    invoices = [
        approve(
            app_sessions,
            world,
            mid,
            by=approver or by,
            org_id=terms.get("org_id"),
            contractor=contractor_user(world, contractor_id),
        )
        for mid in milestone_ids(admin_engine, eid)
    ]
    return eid, invoices


def approve_milestones(app_sessions, admin_engine, milestone_ids_, *, days_ago: int = 0) -> list[uuid.UUID]:
    """Submit and approve each planned milestone through the services (the contractor's user submits, the
    project owner approves), then, with ``days_ago``, date the approval that many days back (so its invoice
    was issued, and falls due, that much earlier). Returns the invoices in the order given."""
    for mid in milestone_ids_:
        move_milestone(app_sessions, admin_engine, mid, "submitted", "approved")
    invoices = [invoice_of(admin_engine, mid) for mid in milestone_ids_]
    if days_ago:
        date_back(admin_engine, invoices, days_ago)
    return invoices


def invoice_of(admin_engine, milestone_id) -> uuid.UUID:
    with admin_engine.connect() as conn:
        return conn.execute(text("select id from invoices where milestone_id = :m"), {"m": milestone_id}).scalar_one()


def date_back(admin_engine, invoice_ids, days: int) -> None:
    """Move the approvals of these invoices ``days`` into the past: the review's time, the invoice's issue
    and due dates (authorized_at stays: it is when the row was written). Only dates change, never an amount.
    The invoice's dates are immutable for everyone, so the owner role lifts that one trigger for this
    transaction only (DDL is transactional: no other session ever sees it off)."""
    with admin_engine.begin() as conn:
        conn.execute(text("set local lock_timeout = '10s'"))  # an open reader of invoices fails this, not hangs it
        conn.execute(text("alter table invoices disable trigger invoices_move_guard"))
        conn.execute(
            text(
                "update reviews r set reviewed_at = r.reviewed_at - make_interval(days => :d)"
                " from invoices i where i.review_id = r.id and i.id = any(:ids)"
            ),
            {"d": days, "ids": list(invoice_ids)},
        )
        conn.execute(
            text("update invoices set issued_on = issued_on - :d, due_date = due_date - :d where id = any(:ids)"),
            {"d": days, "ids": list(invoice_ids)},
        )
        conn.execute(text("alter table invoices enable trigger invoices_move_guard"))


def many_rows(count: int, *, amount: str = "100.00") -> tuple:
    """``count`` schedule rows, "Step 001", "Step 002", ..."""
    return tuple((f"Step {n:03d}", "", amount, "2030-06-30") for n in range(1, count + 1))


# --- acting through the services ------------------------------------------------------------------


def pay_as(app_sessions, person, org_id, invoice_id, *, paid_at: str | None = None, reference="ACH 0001", method="ach"):
    with acting(app_sessions, person, org_id) as (session, actor):
        return record_payment(
            session, actor, invoice_id, PaymentInput(paid_at or date.today().isoformat(), reference, method)
        )


def export_as(app_sessions, person, org_id, invoice_ids, *, preset=""):
    with acting(app_sessions, person, org_id) as (session, actor):
        batch = create_batch(session, actor, Selection(invoice_ids=tuple(str(i) for i in invoice_ids), preset=preset))
        return batch.id


# --- the database, as the owner role sees it ------------------------------------------------------


def invoice_row(admin_engine, invoice_id):
    with admin_engine.connect() as conn:
        return conn.execute(text("select * from invoices where id = :i"), {"i": invoice_id}).mappings().one()


def payments_of(admin_engine, invoice_id) -> list[dict]:
    with admin_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(text("select * from payments where invoice_id = :i"), {"i": invoice_id}).mappings()
        ]


def batch_row(admin_engine, batch_id):
    with admin_engine.connect() as conn:
        return conn.execute(text("select * from ap_export_batches where id = :b"), {"b": batch_id}).mappings().one()


def stored_file(admin_engine, batch_id) -> bytes:
    with admin_engine.connect() as conn:
        return b"".join(
            bytes(c)
            for c in conn.execute(
                text("select data from ap_export_chunks where batch_id = :b order by chunk_no"), {"b": batch_id}
            ).scalars()
        )


def money_state(admin_engine, org_id) -> dict:
    """Every money row of the organization: a refused request must leave all of it as it was."""
    with admin_engine.connect() as conn:

        def rows(sql):
            return [tuple(r) for r in conn.execute(text(sql), {"o": org_id})]

        return {
            "invoices": rows("select * from invoices where org_id = :o order by id"),
            "payments": rows("select * from payments where org_id = :o order by id"),
            "batches": rows("select * from ap_export_batches where org_id = :o order by id"),
            "ledger": rows("select * from ledger_entries where org_id = :o order by id"),
            "org": rows(
                "select invoice_prefix, segregation_of_duties, ap_export_preset, ap_export_columns,"
                " ap_expense_account, ap_export_date_format from organizations where id = :o"
            ),
            "audit": rows("select seq, action from audit_events where org_id = :o order by seq"),
        }
