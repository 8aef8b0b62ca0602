"""Marking a milestone complete: the contractor's note, links and files, as a new revision.

A submission is all or nothing: any problem with the note, a link or a file refuses the whole of it
with a message naming what to fix, and nothing of it is kept. Once written it never changes (the app
role cannot update it); after a partial or dispute the contractor submits the next revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import evidence as evidence_rules
from backoffice.domain.engagements import EngagementStatus, MilestoneStatus
from backoffice.domain.roles import Role
from backoffice.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Engagement, Milestone, Review, Submission
from backoffice.services import audit, evidence
from backoffice.services.evidence import UploadedFile
from backoffice.services.validation import clean_text, parse_id


@dataclass
class SubmissionInput:
    note: str
    links: str = ""  # one per line, as typed
    files: list[UploadedFile] = field(default_factory=list)


def get_milestone(session: Session, milestone_id, *, lock: bool = False) -> Milestone:
    """The milestone as RLS lets the caller see it, or NotFound; with ``lock``, locked for the caller's
    change (a reader who may not change it gets Forbidden)."""
    row_id = parse_id(milestone_id)
    if row_id is None:
        raise NotFound()
    query = select(Milestone).where(Milestone.id == row_id).execution_options(populate_existing=True)
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None:
        if lock and session.get(Milestone, row_id) is not None:
            raise Forbidden("Your role cannot change this milestone.")
        raise NotFound()
    return row


def latest_submission(session: Session, milestone_id) -> tuple[Submission | None, Review | None]:
    row = session.execute(
        select(Submission, Review)
        .outerjoin(Review, Review.submission_id == Submission.id)
        .where(Submission.milestone_id == milestone_id)
        .order_by(Submission.revision.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def submit_work(session: Session, actor: Actor, milestone_id, data: SubmissionInput) -> Submission:
    """Record the next revision of the milestone's submission with its evidence, and mark the milestone
    submitted. Raises NotFound (not the caller's), InvalidTransition (not open for submission) or
    ValidationError with messages for ``note``, ``links``, ``files`` and ``evidence``."""
    if actor.role != Role.CONTRACTOR:
        raise Forbidden("Only the contractor marks its milestone complete.")
    with unit_of_work(session):
        # The engagement first (shared: submissions on its other milestones go on), so a pause or a
        # cancellation waits for this submission or is seen by it; then the milestone itself.
        engagement_id = get_milestone(session, milestone_id).engagement_id
        engagement = session.execute(
            select(Engagement)
            .where(Engagement.id == engagement_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        ).scalar_one()
        milestone = get_milestone(session, milestone_id, lock=True)
        if engagement.status != EngagementStatus.ACTIVE:
            raise InvalidTransition(
                f"Work is submitted on an active engagement; this one is "
                f"{EngagementStatus(engagement.status).label.lower()}."
            )
        if milestone.status != MilestoneStatus.PLANNED:
            raise InvalidTransition(
                f"“{milestone.title}” is {MilestoneStatus(milestone.status).label.lower()}; "
                "only a planned milestone is marked complete."
            )
        errors: dict[str, str] = {}
        note = clean_text(
            data.note,
            "note",
            errors,
            label="note on what you delivered",
            required=True,
            max_len=evidence_rules.MAX_NOTE_LENGTH,
            multiline=True,
        )
        links, problem = evidence_rules.clean_links(data.links)
        if problem:
            errors["links"] = problem
        checked, problems = evidence.check_files(data.files, evidence.limits_of(session, actor.org_id))
        if problems:
            errors["files"] = "\n".join(problems)
        if not data.files and not links and "links" not in errors:
            errors["evidence"] = "Attach at least one file or add a link to the work."
        if errors:
            raise ValidationError(
                errors, "Nothing was submitted. Correct the highlighted fields and choose the files again."
            )
        previous, _ = latest_submission(session, milestone.id)
        submission = Submission(
            org_id=milestone.org_id,
            contractor_id=milestone.contractor_id,
            milestone_id=milestone.id,
            revision=(previous.revision if previous else 0) + 1,
            note=note,
            links=links,
            submitted_by=actor.user_id,
        )
        session.add(submission)
        session.flush()
        stored = [
            evidence.store(
                session,
                org_id=milestone.org_id,
                contractor_id=milestone.contractor_id,
                submission_id=submission.id,
                position=n,
                item=item,
            )
            for n, item in enumerate(checked, start=1)
        ]
        session.execute(
            update(Milestone)
            .where(Milestone.id == milestone.id)
            .values(status=MilestoneStatus.SUBMITTED.value, updated_at=func.now())
        )
        audit.record(
            session,
            actor,
            "milestone.submitted",
            "milestone",
            milestone.id,
            {
                "title": milestone.title,
                "submission_id": str(submission.id),
                "revision": submission.revision,
                "links": links,
                "files": [
                    {"name": f.file_name, "size": f.size_bytes, "type": f.content_type, "sha256": f.sha256}
                    for f in stored
                ],
            },
        )
        queue.notify(session, milestone.org_id, "milestone.submitted", submission.id)
    return submission
