"""Demo engagements in every interesting state, built through the same services the app uses: work
is submitted by the contractor with real evidence files and decided by the project owner.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.models import Milestone
from backoffice.services import change_orders as co_service
from backoffice.services import engagements as service
from backoffice.services import reviews, schedule, submissions
from backoffice.services.demo_evidence import notes_md, photo_png, report_pdf
from backoffice.services.evidence import UploadedFile
from backoffice.services.schedule import RowInput, ScheduleInput


def _draft(session, owner: Actor, contractor_id, title, sow, rows, mode="amounts", value="") -> object:
    e = service.create_engagement(
        session, owner, service.EngagementInput(contractor_id=str(contractor_id), title=title, sow_reference=sow)
    )
    schedule.save_schedule(session, owner, e.id, ScheduleInput(rows=rows, mode=mode, contract_value=value))
    return e


def _row(title, deliverable, amount, due: date, percent="") -> RowInput:
    return RowInput(title=title, deliverable=deliverable, amount=amount, percent=percent, due_date=due.isoformat())


def _submit(session: Session, contractor: Actor, milestone: Milestone, note: str, *, files=(), links: str = "") -> None:
    submissions.submit_work(
        session,
        contractor,
        milestone.id,
        submissions.SubmissionInput(
            note=note, links=links, files=[UploadedFile.from_bytes(name, data) for name, data in files]
        ),
    )


def _decide(session: Session, owner: Actor, milestone: Milestone, decision: str, reason: str = "") -> None:
    latest, _ = submissions.latest_submission(session, milestone.id)
    reviews.decide(session, owner, milestone.id, reviews.DecisionInput(str(latest.id), decision, reason))


def _deliver(session: Session, contractor: Actor, owner: Actor, milestone: Milestone) -> None:
    """Submitted with a report and approved at the first attempt."""
    _submit(
        session,
        contractor,
        milestone,
        f"{milestone.title} is done; the report is attached.",
        files=[
            (
                f"{milestone.title.lower().replace(' ', '-')}-report.pdf",
                report_pdf(milestone.title, [milestone.deliverable, "Completed as specified."]),
            )
        ],
    )
    _decide(session, owner, milestone, "approve")


def seed(session: Session, *, owner: Actor, contractor: Actor, other_contractor_id, third_contractor_id) -> None:
    """Engagements for the demo organization: active (with milestones planned, submitted, approved, one
    disputed then approved, one sent back, one overdue, and a change order), awaiting acceptance,
    completed, draft, cancelled."""
    today = date.today()
    d = lambda days: today + timedelta(days=days)  # noqa: E731

    kitchen = _draft(
        session,
        owner,
        contractor.contractor_id,
        "Kitchen renovation, 14 Elm St",
        "SOW-2026-014",
        [
            _row(
                "Design package",
                "Floor plans, elevations and a finishes schedule, signed off by the client.",
                "4,500.00",
                d(-40),
            ),
            _row(
                "Demolition and rough-in",
                "Old kitchen removed; plumbing and electrical rough-in inspected.",
                "7,250.00",
                d(-12),
            ),
            _row(
                "Cabinetry and countertops",
                "Cabinets installed and level; quartz countertops templated and fitted.",
                "12,800.00",
                d(-3),
            ),
            _row(
                "Finishing and handover",
                "Backsplash, paint, fixtures; snag list closed; keys handed over.",
                "5,450.00",
                d(21),
            ),
        ],
    )
    service.perform(session, owner, kitchen.id, "send")
    service.perform(session, contractor, kitchen.id, "accept")
    ms = schedule_milestones(session, kitchen.id)
    _deliver(session, contractor, owner, ms[0])
    # Demolition: disputed once (no inspection certificate), then approved on the second revision.
    _submit(
        session,
        contractor,
        ms[1],
        "Old kitchen removed and rough-in finished. Photos attached.",
        files=[("rough-in-east-wall.png", photo_png())],
    )
    _decide(
        session,
        owner,
        ms[1],
        "dispute",
        "The deliverable includes the rough-in inspection. Please attach the inspector's sign-off.",
    )
    _submit(
        session,
        contractor,
        ms[1],
        "Inspection passed on the second visit; the sign-off is attached.",
        files=[
            (
                "rough-in-inspection-signoff.pdf",
                report_pdf(
                    "Rough-in inspection",
                    [
                        "Plumbing rough-in: passed.",
                        "Electrical rough-in: passed.",
                        "Inspector: J. Alvarez, City of Springfield.",
                    ],
                ),
            ),
            ("rough-in-east-wall.png", photo_png()),
        ],
    )
    _decide(session, owner, ms[1], "approve", "Thanks, all in order.")
    # Cabinetry: submitted, waiting in the owner's review queue.
    _submit(
        session,
        contractor,
        ms[2],
        "Cabinets are installed and level; countertops fitted on Tuesday. "
        "Photos and the installer's checklist are attached; the supplier's warranty is on the shared drive.",
        files=[
            ("cabinets-north-wall.png", photo_png(tint=(150, 110, 70))),
            (
                "installer-checklist.pdf",
                report_pdf(
                    "Installer checklist",
                    [
                        "Cabinets level within 1 mm / m.",
                        "Doors aligned and soft-close tested.",
                        "Countertop seams sealed.",
                    ],
                ),
            ),
            (
                "punch-list.md",
                notes_md("Punch list", ["Touch up paint on the pantry door", "Fit the last two handles"]),
            ),
        ],
        links="https://drive.example.com/northwind/kitchen-14-elm/warranty",
    )
    co_service.issue_change_order(
        session,
        owner,
        kitchen.id,
        co_service.ChangeOrderInput(
            reason="Client asked for under-cabinet lighting; finishing moved a week for the countertop lead time.",
            based_on=0,
            changes=[
                co_service.MilestoneChange(
                    str(ms[3].id),
                    title=ms[3].title,
                    deliverable=ms[3].deliverable,
                    amount="5,450.00",
                    due_date=d(28).isoformat(),
                )
            ],
            additions=[
                _row("Under-cabinet lighting", "LED strips with dimmer, installed and tested.", "1,180.00", d(28))
            ],
        ),
    )

    # Under-cabinet lighting: delivered early but only in part, so the owner sent it back with the reason (a
    # dispute: under the demo's split policy a "Partial" would pay the strips now, and this shows a sent-back one).
    lighting = schedule_milestones(session, kitchen.id)[4]
    _submit(
        session,
        contractor,
        lighting,
        "LED strips are in along the north wall; the dimmer arrives next week.",
        files=[("lighting-north-wall.png", photo_png(tint=(230, 200, 120)))],
    )
    _decide(
        session,
        owner,
        lighting,
        "dispute",
        "The strips look good, but the deliverable includes the dimmer and a test. Please resubmit once it is in.",
    )

    rewiring = _draft(
        session,
        owner,
        other_contractor_id,
        "Office rewiring, 2nd floor",
        "PO-88213",
        [
            _row("Survey and load calculation", "Circuit survey and load schedule.", "", d(10)),
            _row("Rewire open-plan area", "New circuits, outlets and data drops.", "", d(35)),
            _row("Testing and certification", "Electrical installation certificate.", "", d(45)),
        ],
        mode="equal",
        value="18,000.00",
    )
    service.perform(session, owner, rewiring.id, "send")

    lobby = _draft(
        session,
        owner,
        contractor.contractor_id,
        "Lobby refresh",
        "SOW-2026-003",
        [
            _row("Concept boards", "Two mood boards and a material palette.", "", d(-90), percent="40"),
            _row("Installation", "Furniture placed, art hung, lighting adjusted.", "", d(-60), percent="60"),
        ],
        mode="percent",
        value="9,999.99",
    )
    service.perform(session, owner, lobby.id, "send")
    service.perform(session, contractor, lobby.id, "accept")
    for milestone in schedule_milestones(session, lobby.id):
        _deliver(session, contractor, owner, milestone)
    service.perform(session, owner, lobby.id, "complete")

    _draft(
        session,
        owner,
        other_contractor_id,
        "Showroom signage",
        None,
        [
            _row("Sign design", "Three concepts and one final design.", "1,200.00", d(14)),
            _row("Fabrication and install", "Illuminated sign mounted and connected.", "3,650.00", d(40)),
        ],
    )

    parking = _draft(
        session,
        owner,
        third_contractor_id,
        "Parking lot survey",
        "SOW-2026-021",
        [
            _row("Topographic survey", "Survey drawing in DWG and PDF.", "2,400.00", d(30)),
        ],
    )
    service.perform(session, owner, parking.id, "cancel", "Replaced by the city's own survey of the lot.")


def schedule_milestones(session: Session, engagement_id) -> list[Milestone]:
    return list(
        session.execute(
            select(Milestone).where(Milestone.engagement_id == engagement_id).order_by(Milestone.seq)
        ).scalars()
    )


def seed_second_org(session: Session, *, owner: Actor, contractor_id) -> None:
    today = date.today()
    facade = _draft(
        session,
        owner,
        contractor_id,
        "Facade cleaning, Building C",
        "RA-4471",
        [
            _row(
                "Scaffold and inspection", "Scaffold erected; condition report.", "3,200.00", today + timedelta(days=7)
            ),
            _row("Cleaning and sealing", "All four elevations cleaned and sealed.", "8400", today + timedelta(days=30)),
        ],
    )
    service.perform(session, owner, facade.id, "send")
