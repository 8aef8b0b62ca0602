"""Demo completion billing (issue 20), through the real services as the people who would act. Two engagements with
Northwind billed on completion (DESIGN.md section 4): the owner sets the contract value and the advance, shares the
rest among tasks and confirms the advance as he sends the work request; Nina accepts (the advance is authorized),
delivers tasks and invoices approved ones when she chooses; finance pays.

- "Office fit-out, 4th floor", half way: $48,000.00 with a 12% advance ($5,760.00, paid); of its five tasks, two
  approved and invoiced together (that invoice exported to QuickBooks Online, awaiting its payment run), one
  approved and not invoiced yet (Nina's home offers it), one submitted for the owner's review, one planned.
- "Wayfinding signage, all floors", completed: $9,600.00 with a 10% advance; its first task invoiced by Nina, the
  last approval authorized the final payment for the other two and completed the engagement; all of it paid.

Due dates are counted from the day it is seeded. The demo seeds as the owner role, so every query names the
organization."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.domain.invoices import InvoiceKind
from backoffice.models import Engagement, Invoice
from backoffice.services import ap_export, completion, payments, schedule
from backoffice.services import engagements as service
from backoffice.services.demo_engagements import _deliver, _row, _submit, schedule_milestones
from backoffice.services.demo_evidence import photo_png, report_pdf
from backoffice.services.schedule import ScheduleInput

FIT_OUT = "Office fit-out, 4th floor"
SIGNAGE = "Wayfinding signage, all floors"


def _completion_draft(
    session: Session, owner: Actor, contractor_id, title: str, sow: str, value: str, advance: str, rows
) -> Engagement:
    e = service.create_engagement(
        session,
        owner,
        service.EngagementInput(
            contractor_id=str(contractor_id),
            title=title,
            sow_reference=sow,
            billing_mode="completion",
            contract_value=value,
            advance=advance,
        ),
    )
    schedule.save_schedule(session, owner, e.id, ScheduleInput(rows=rows))
    return e


def _invoices(session: Session, org_id, engagement_id) -> list[Invoice]:
    return list(
        session.execute(
            select(Invoice)
            .where(Invoice.org_id == org_id, Invoice.engagement_id == engagement_id)
            .order_by(Invoice.number)
        ).scalars()
    )


def _advance(session: Session, org_id, engagement_id) -> Invoice:
    return session.execute(
        select(Invoice).where(
            Invoice.org_id == org_id, Invoice.engagement_id == engagement_id, Invoice.kind == InvoiceKind.ADVANCE.value
        )
    ).scalar_one()


def seed(session: Session, *, owner: Actor, nina: Actor, finance: Actor) -> None:
    today = date.today()
    d = lambda days: today + timedelta(days=days)  # noqa: E731
    paid_on = today.isoformat()

    # --- completed --------------------------------------------------------------------------------------------------
    signage = _completion_draft(
        session,
        owner,
        nina.contractor_id,
        SIGNAGE,
        "SOW-2026-038",
        "9,600.00",
        "10",
        [
            _row(
                "Signage design", "Sign family, floor directories and a location plan, signed off.", "2,880.00", d(-45)
            ),
            _row("Fabrication", "Every sign made and checked against the schedule.", "3,840.00", d(-20)),
            _row("Installation", "Signs fixed on every floor; the directories updated.", "1,920.00", d(-6)),
        ],
    )
    service.perform(session, owner, signage.id, "send", confirm_advance=signage.advance_minor)
    service.perform(session, nina, signage.id, "accept")
    payments.record_payment(
        session,
        finance,
        _advance(session, owner.org_id, signage.id).id,
        payments.PaymentInput(paid_on, "ACH 2026-122 (advance)", "ach"),
    )
    design, fabrication, installation = schedule_milestones(session, signage.id)
    _deliver(session, nina, owner, design)
    completion.raise_invoice(session, nina, signage.id, [str(design.id)])
    _deliver(session, nina, owner, fabrication)
    _deliver(session, nina, owner, installation)  # the last task: the final payment, and the engagement completed
    unpaid = [i for i in _invoices(session, owner.org_id, signage.id) if i.kind != InvoiceKind.ADVANCE.value]
    batch = ap_export.create_batch(
        session,
        finance,
        ap_export.Selection(invoice_ids=tuple(str(i.id) for i in unpaid), preset="quickbooks_online"),
    )
    payments.record_batch_payment(session, finance, batch.id, payments.PaymentInput(paid_on, "ACH run 2026-127", "ach"))

    # --- half way ---------------------------------------------------------------------------------------------------
    fit_out = _completion_draft(
        session,
        owner,
        nina.contractor_id,
        FIT_OUT,
        "SOW-2026-044",
        "48,000.00",
        "12",
        [
            _row(
                "Space plan and finishes",
                "Layout, finishes schedule and furniture plan, signed off.",
                "3,840.00",
                d(-30),
            ),
            _row("Strip-out and partitions", "Old fit-out removed; new partitions up and taped.", "5,760.00", d(-16)),
            _row("Ceilings and lighting", "Acoustic ceilings and LED panels installed and tested.", "10,560.00", d(-4)),
            _row("Joinery and kitchenette", "Reception desk, storage walls and kitchenette fitted.", "13,440.00", d(9)),
            _row(
                "Furniture and handover",
                "Furniture placed, snag list closed, keys and manuals handed over.",
                "8,640.00",
                d(30),
            ),
        ],
    )
    service.perform(session, owner, fit_out.id, "send", confirm_advance=fit_out.advance_minor)
    service.perform(session, nina, fit_out.id, "accept")  # the advance is authorized
    payments.record_payment(
        session,
        finance,
        _advance(session, owner.org_id, fit_out.id).id,
        payments.PaymentInput(paid_on, "ACH 2026-131 (advance)", "ach"),
    )
    plan, strip_out, ceilings, joinery, _furniture = schedule_milestones(session, fit_out.id)
    for task in (plan, strip_out, ceilings):
        _deliver(session, nina, owner, task)
    task_invoice = completion.raise_invoice(session, nina, fit_out.id, [str(plan.id), str(strip_out.id)])
    _submit(
        session,
        nina,
        joinery,
        "Reception desk and storage walls are in; the kitchenette was fitted yesterday. Photos attached.",
        files=[
            ("reception-desk.png", photo_png(tint=(170, 130, 90))),
            ("kitchenette-checklist.pdf", report_pdf("Kitchenette", ["Units level.", "Sink and tap tested."])),
        ],
    )
    ap_export.create_batch(
        session, finance, ap_export.Selection(invoice_ids=(str(task_invoice.id),), preset="quickbooks_online")
    )
