"""Demo projects (issue 19), through the real services as the people who would act: the admin keeps the project
categories; the owner opens a refit of the meeting rooms to three invited contractors, and each proposes (Nina for
Northwind, Ben for Bluebird, Hal for Harbor), so the owner has three proposals to compare; and a loading dock survey
the owner awarded to Harbor, whose engagement came out of the award (its proposal_id set) and moves on like the
others: its first milestone delivered and approved. Deadlines and due dates are counted from the day it is seeded."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.services import awards, projects, proposals, reviews, submissions
from backoffice.services.demo_engagements import _submit, schedule_milestones
from backoffice.services.demo_evidence import report_pdf
from backoffice.services.evidence import UploadedFile
from backoffice.services.projects import ProjectInput
from backoffice.services.proposals import ProposalInput
from backoffice.services.schedule import RowInput

CATEGORIES = ("Renovation", "Design", "Electrical", "Surveying", "IT")
OPEN_PROJECT = "Meeting rooms refit, 3rd floor"
AWARDED_PROJECT = "Loading dock survey, warehouse B"


def _offer(price: str, timeline: str, note: str, rows) -> ProposalInput:
    return ProposalInput(
        price=price,
        timeline=timeline,
        note=note,
        rows=[RowInput(title=t, deliverable=d, amount=a, due_date=due.isoformat()) for t, d, a, due in rows],
    )


def seed(session: Session, *, admin: Actor, owner: Actor, nina: Actor, ben: Actor, hal: Actor) -> None:
    today = date.today()
    d = lambda days: today + timedelta(days=days)  # noqa: E731
    category = {name: projects.add_category(session, admin, name).id for name in CATEGORIES}

    refit = projects.open_project(
        session,
        owner,
        ProjectInput(
            title=OPEN_PROJECT,
            category_id=str(category["Renovation"]),
            deadline=d(10).isoformat(),
            description="Turn the four meeting rooms on the 3rd floor into two large rooms and three phone booths: "
            "new partitions and acoustic ceilings, power and data at every table, dimmable lighting and a screen "
            "in each large room. The floor stays in use; noisy work before 9 am or after 5 pm.",
            budget="24,000.00",
            invited=tuple(str(a.contractor_id) for a in (nina, ben, hal)),
        ),
    )
    proposals.submit_proposal(
        session,
        nina,
        refit.id,
        _offer(
            "21,600.00",
            "Eight weeks from award, two of them for the design",
            "We designed the lobby refresh last year; the concept attached keeps its palette.",
            [
                (
                    "Design and finishes",
                    "Layout, acoustic plan and a finishes schedule, signed off.",
                    "6,400.00",
                    d(30),
                ),
                (
                    "Build-out and handover",
                    "Partitions, ceilings and finishes complete; snag list closed.",
                    "15,200.00",
                    d(66),
                ),
            ],
        ),
        [
            UploadedFile.from_bytes(
                "meeting-rooms-concept.pdf",
                report_pdf("Meeting rooms concept", ["Two rooms, three booths.", "Oak and felt, as the lobby."]),
            )
        ],
    )
    proposals.submit_proposal(
        session,
        ben,
        refit.id,
        _offer(
            "18,950.00",
            "Six weeks from award",
            "Power, data and lighting are ours; partitions and ceilings by our usual fit-out partner.",
            [
                ("Power and data", "Floor boxes at every table, data drops, certificate.", "7,450.00", d(28)),
                ("Partitions, lighting and AV", "Rooms built, dimmable lighting, screens mounted.", "11,500.00", d(52)),
            ],
        ),
    )
    proposals.submit_proposal(
        session,
        hal,
        refit.id,
        _offer(
            "12,300.00",
            "Three weeks for the survey and setting-out; the build by others",
            "A part of the scope: measured survey, as-built drawings and the setting-out of the new partitions.",
            [
                ("Measured survey", "As-built drawings of the 3rd floor in DWG and PDF.", "3,300.00", d(21)),
                ("Setting-out", "Partition lines and ceiling levels marked on site.", "9,000.00", d(35)),
            ],
        ),
    )

    dock = projects.open_project(
        session,
        owner,
        ProjectInput(
            title=AWARDED_PROJECT,
            category_id=str(category["Surveying"]),
            deadline=d(5).isoformat(),
            description="A topographic and level survey of the loading dock and its ramp before it is resurfaced.",
            budget="6,000.00",
            invited=(str(hal.contractor_id), str(nina.contractor_id)),
        ),
    )
    won = proposals.submit_proposal(
        session,
        hal,
        dock.id,
        _offer(
            "5,400.00",
            "Two weeks",
            "We surveyed the parking lot next to it, so our control points are already in place.",
            [
                ("Topographic survey", "Survey drawing of the dock and ramp in DWG and PDF.", "2,150.00", d(7)),
                ("Levels and drainage report", "Spot levels, falls and a drainage report.", "3,250.00", d(21)),
            ],
        ),
    )
    proposals.submit_proposal(
        session,
        nina,
        dock.id,
        _offer(
            "6,250.00",
            "Three weeks",
            "With our surveying partner.",
            [("Survey and report", "Survey drawing and levels report.", "6,250.00", d(21))],
        ),
    )
    engagement = awards.award(session, owner, dock.id, won.id)
    _partly_approve(session, hal, owner, schedule_milestones(session, engagement.id)[0])


def _partly_approve(session: Session, hal: Actor, owner: Actor, survey) -> None:
    """The survey drawing came without the ramp: the owner approves (and pays) the dock's part, and the ramp's
    becomes a new milestone (the organization's split policy, the default): the demo's "Partly approved"."""
    _submit(
        session,
        hal,
        survey,
        "Survey drawing of the dock attached; the ramp follows once the resurfacing crew has moved its plant.",
        files=[("dock-survey.pdf", report_pdf(survey.title, ["Dock surveyed.", "Ramp not yet surveyed."]))],
    )
    latest, _ = submissions.latest_submission(session, survey.id)
    reviews.decide(
        session,
        owner,
        survey.id,
        reviews.DecisionInput(
            str(latest.id),
            "partial",
            "The dock's drawing is complete; the ramp is still to survey.",
            approved_amount="1,500.00",
            amount_minor=str(survey.amount_minor),
        ),
    )
