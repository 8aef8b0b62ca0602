"""Proposals (DESIGN.md section 3, "Project and proposal"): a contractor's one offer on an open project, its price
shared exactly by the milestones it proposes, edited or withdrawn while the project takes proposals.

Milestones are checked with the milestone editor's own helpers (services/schedule.check_schedule: typed amounts,
percentages of the price, or an equal split, allocated by largest remainder), so a proposal's schedule reads and
adds up exactly as an engagement's does, and the award can copy it as it is. The database checks every rule again
(sql/project_guards.sql): one proposal per contractor and project, only while the project takes proposals, and the
milestones sum to the price at commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import evidence as evidence_rules
from backoffice.domain import projects as rules
from backoffice.domain.completion import BillingMode, advance_amount, task_word
from backoffice.domain.money import AmountError, format_amount, parse_amount
from backoffice.domain.projects import ProposalRefusal, ProposalStatus
from backoffice.domain.roles import Role
from backoffice.errors import Conflict, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Project, ProjectInvitation, Proposal, ProposalFile, ProposalMilestone
from backoffice.queries.projects import today
from backoffice.services import audit, evidence
from backoffice.services.projects import get_project
from backoffice.services.schedule import CleanRow, RowInput, ScheduleInput, check_schedule
from backoffice.services.validation import clean_text, parse_id

MAX_FILES = 10
MAX_FILE_MB = 10


@dataclass(frozen=True)
class ProposalInput:
    """A proposal as typed: the price, milestones (amounts, or percentages or an equal split of the price)."""

    price: str = ""
    timeline: str = ""
    note: str = ""
    rows: list[RowInput] = field(default_factory=list)
    mode: str = "amounts"
    remove_files: tuple[str, ...] = ()  # ids of files to take off (an edit)


@dataclass
class CheckedProposal:
    price: int | None
    timeline: str
    note: str
    rows: list[CleanRow]  # clean rows when there are no errors
    errors: dict[str, str]
    amounts: dict[int, int]  # row index -> minor units, shown beside percentages and splits
    total: int
    advance: int | None = None  # on a completion project, once the price is known: what the award advances
    pool: int | None = None  # what the milestones (tasks) share once the price is known: the price less any advance


def check_proposal(currency: str, data: ProposalInput, advance_bps: int | None = None) -> CheckedProposal:
    """Check a proposal as typed; never raises (errors are in the result, keyed by field). On a completion project
    (``advance_bps`` given) the milestones, called tasks, share the price less the advance
    (domain.projects.proposal_task_pool): percentages and an equal split divide that, and the result says the advance
    and what the tasks share."""
    errors: dict[str, str] = {}
    word = task_word(BillingMode.MILESTONE if advance_bps is None else BillingMode.COMPLETION, plural=True)
    price = pool = advance = None
    try:
        price = parse_amount(data.price, currency)
    except AmountError as exc:
        errors["price"] = str(exc)
    if price is not None:
        pool = rules.proposal_task_pool(price, advance_bps)
        advance = None if advance_bps is None else advance_amount(price, advance_bps)
        if pool <= 0:
            errors["price"] = f"Your price less the advance leaves nothing for the {word}; raise the price."
    contract_value = data.price
    if pool is not None and advance_bps is not None:
        contract_value = format_amount(pool, currency, symbol=False) if pool > 0 else ""
    checked = check_schedule(currency, ScheduleInput(rows=data.rows, mode=data.mode, contract_value=contract_value))
    for key, message in checked.errors.items():
        # The price is the contract value: a price that does not parse is said at "price" already, and one too small
        # to give every milestone an amount (a split or percentages) is said there too. (Before, the second was
        # dropped: the proposal went to the database without milestones and came back as the guard's refusal.)
        errors.setdefault("price" if key == "contract_value" else key, message)
    live = [r for r in data.rows if not r.is_blank()]
    if len(live) > rules.MAX_PROPOSAL_MILESTONES:
        errors["rows"] = f"Propose at most {rules.MAX_PROPOSAL_MILESTONES} {word}."
    amounts = list(checked.amounts.values())
    complete = price is not None and pool > 0 and "rows" not in errors and amounts and len(amounts) == len(live)
    if complete and not rules.milestones_share_price(price, amounts, advance_bps):
        total = sum(amounts)
        what = (
            f"the price of {format_amount(price, currency)}"
            if advance_bps is None
            else f"the price less the advance, {format_amount(pool, currency)}"
        )
        errors["rows"] = (
            f"The {word} add up to {format_amount(total, currency)}, "
            f"{format_amount(abs(total - pool), currency)} {'more' if total > pool else 'less'} than {what}; "
            "change an amount or the price so that they match exactly."
        )
    timeline = clean_text(data.timeline, "timeline", errors, label="timeline", required=False, max_len=500)
    note = clean_text(data.note, "note", errors, label="note", required=False, max_len=10000, multiline=True)
    return CheckedProposal(
        price=price,
        timeline=timeline or "",
        note=note or "",
        rows=[] if errors else checked.rows,
        errors=errors,
        amounts=checked.amounts,
        total=checked.total,
        advance=advance,
        pool=pool,
    )


def file_limits(session: Session, org_id) -> evidence_rules.Limits:
    """The organization's evidence limits, capped for a proposal's attachments (kept in the database row)."""
    org = evidence.limits_of(session, org_id)
    mb = evidence_rules.MB
    return evidence_rules.Limits(
        min(org.max_files, MAX_FILES),
        min(org.max_file_bytes, MAX_FILE_MB * mb),
        min(org.max_submission_bytes, MAX_FILES * MAX_FILE_MB * mb),
    )


def own_proposal(session: Session, actor: Actor, project_id) -> Proposal | None:
    """The acting contractor's proposal on this project, if it made one."""
    return session.execute(
        select(Proposal).where(Proposal.project_id == project_id, Proposal.contractor_id == actor.contractor_id)
    ).scalar_one_or_none()


def refusal_for(session: Session, actor: Actor, project: Project) -> ProposalRefusal | None:
    """Why the acting contractor may not propose on this project now (domain.projects.proposal_refusal)."""
    invited = session.execute(
        select(func.count())
        .select_from(ProjectInvitation)
        .where(ProjectInvitation.project_id == project.id, ProjectInvitation.contractor_id == actor.contractor_id)
    ).scalar_one()
    return rules.proposal_refusal(
        project.status,
        project.deadline,
        today(session),
        project.audience,
        invited > 0,
        own_proposal(session, actor, project.id) is not None,
    )


def submit_proposal(
    session: Session, actor: Actor, project_id, data: ProposalInput, files: list[evidence.UploadedFile] = ()
) -> Proposal:
    """The acting contractor's proposal on an open project it may propose on; the project's owner is told.

    Raises NotFound for a project it may not see, Conflict when it proposed already, InvalidTransition when the
    project is closed or its deadline passed, ValidationError with the message at each field."""
    actor.require(Role.CONTRACTOR)
    try:
        with unit_of_work(session):
            project = get_project(session, project_id)
            if (refusal := refusal_for(session, actor, project)) is not None:
                raise (Conflict if refusal == ProposalRefusal.DUPLICATE else InvalidTransition)(refusal.message)
            checked = _checked(session, actor, project, data, files)
            proposal = Proposal(
                org_id=actor.org_id,
                project_id=project.id,
                contractor_id=actor.contractor_id,
                price_minor=checked.price,
                currency=project.currency,  # the one the price was read in (held to the project's at commit)
                timeline=checked.timeline,
                note=checked.note,
                submitted_by=actor.user_id,
            )
            session.add(proposal)
            session.flush()
            _write_parts(session, actor, proposal, checked, files, first_position=0)
            audit.record(
                session,
                actor,
                "proposal.submitted",
                "proposal",
                proposal.id,
                {"project_id": str(project.id), "price_minor": checked.price, "milestones": len(checked.rows)},
            )
            queue.notify(session, actor.org_id, "proposal.submitted", proposal.id)
    except DBAPIError as exc:
        raise _refused(exc) from None
    return proposal


def update_proposal(
    session: Session, actor: Actor, proposal_id, data: ProposalInput, files: list[evidence.UploadedFile] = ()
) -> Proposal:
    """Change the acting contractor's proposal while the project takes proposals: price, milestones (replaced as a
    whole), timeline, note; files added, or taken off by id."""
    actor.require(Role.CONTRACTOR)
    try:
        with unit_of_work(session):
            proposal = _locked_own(session, actor, proposal_id)
            project = get_project(session, proposal.project_id)
            _require_changeable(session, proposal, project)
            checked = _checked(session, actor, project, data, files, proposal=proposal)
            before = {"price_minor": proposal.price_minor, "timeline": proposal.timeline, "note": proposal.note}
            proposal.price_minor, proposal.timeline, proposal.note = checked.price, checked.timeline, checked.note
            proposal.updated_at = func.now()
            session.flush()
            session.execute(delete(ProposalMilestone).where(ProposalMilestone.proposal_id == proposal.id))
            removed = _remove_files(session, proposal, data.remove_files)
            last = session.execute(
                select(func.coalesce(func.max(ProposalFile.position), -1)).where(
                    ProposalFile.proposal_id == proposal.id
                )
            ).scalar_one()
            _write_parts(session, actor, proposal, checked, files, first_position=last + 1)
            after = {"price_minor": checked.price, "timeline": checked.timeline, "note": checked.note}
            audit.record(
                session,
                actor,
                "proposal.updated",
                "proposal",
                proposal.id,
                {
                    "changes": {k: {"before": before[k], "after": v} for k, v in after.items() if before[k] != v},
                    "milestones": len(checked.rows),
                    "files_added": [f.name for f in files],
                    "files_removed": removed,
                },
            )
    except DBAPIError as exc:
        raise _refused(exc) from None
    return proposal


def withdraw_proposal(session: Session, actor: Actor, proposal_id) -> Proposal:
    """Take the acting contractor's proposal back while the project is open, its deadline passed or not (final: one
    proposal per project).
    Under the proposal's row lock, so a withdrawal and an award of the same proposal never both happen."""
    actor.require(Role.CONTRACTOR)
    try:
        with unit_of_work(session):
            proposal = _locked_own(session, actor, proposal_id)
            project = get_project(session, proposal.project_id)
            _require_changeable(session, proposal, project, withdrawal=True)
            proposal.status = ProposalStatus.WITHDRAWN.value
            proposal.withdrawn_at = func.now()
            proposal.updated_at = func.now()
            session.flush()
            audit.record(session, actor, "proposal.withdrawn", "proposal", proposal.id, {"project_id": str(project.id)})
            queue.notify(session, actor.org_id, "proposal.withdrawn", proposal.id)
    except DBAPIError as exc:
        raise _refused(exc) from None
    return proposal


def _locked_own(session: Session, actor: Actor, proposal_id) -> Proposal:
    row_id = parse_id(proposal_id)
    proposal = (
        row_id
        and session.execute(
            select(Proposal)
            .where(Proposal.id == row_id, Proposal.contractor_id == actor.contractor_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    )
    if not proposal:
        raise NotFound()
    return proposal


def _require_changeable(session: Session, proposal: Proposal, project: Project, *, withdrawal: bool = False) -> None:
    if proposal.status not in rules.EDITABLE_PROPOSAL:
        raise InvalidTransition(
            f"Your proposal was {ProposalStatus(proposal.status).label.lower()}; it can no longer change."
        )
    if withdrawal:
        if not rules.may_withdraw(project.status):
            raise InvalidTransition(ProposalRefusal.CLOSED.message)
    elif not rules.takes_proposals(project.status, project.deadline, today(session)):
        reason = ProposalRefusal.CLOSED if project.status != "open" else ProposalRefusal.DEADLINE
        raise InvalidTransition(reason.message)


def _checked(session, actor, project, data, files, *, proposal: Proposal | None = None) -> CheckedProposal:
    checked = check_proposal(project.currency, data, advance_bps_of(project))
    errors = dict(checked.errors)
    if files:
        kept = 0
        if proposal is not None:
            remove = {parse_id(r) for r in data.remove_files}
            kept = session.execute(
                select(func.count())
                .select_from(ProposalFile)
                .where(ProposalFile.proposal_id == proposal.id, ProposalFile.id.not_in([r for r in remove if r]))
            ).scalar_one()
        limits = file_limits(session, actor.org_id)
        _, problems = evidence.check_files(
            list(files), evidence_rules.Limits(max(limits.max_files - kept, 0), *_sizes(limits))
        )
        if problems:
            errors["files"] = " ".join(problems)
    if errors:
        raise ValidationError(errors)
    return checked


def _sizes(limits: evidence_rules.Limits) -> tuple[int, int]:
    return limits.max_file_bytes, limits.max_submission_bytes


def _write_parts(session, actor, proposal, checked: CheckedProposal, files, *, first_position: int) -> None:
    for seq, row in enumerate(checked.rows, start=1):
        session.add(
            ProposalMilestone(
                org_id=proposal.org_id,
                proposal_id=proposal.id,
                contractor_id=proposal.contractor_id,
                seq=seq,
                title=row.title,
                deliverable=row.deliverable,
                amount_minor=row.amount_minor,
                due_date=row.due_date,
            )
        )
    checked_files, _ = evidence.check_files(list(files), file_limits(session, actor.org_id)) if files else ([], [])
    for position, item in enumerate(checked_files, start=first_position):
        item.upload.stream.seek(0)
        data = item.upload.stream.read()
        session.add(
            ProposalFile(
                org_id=proposal.org_id,
                proposal_id=proposal.id,
                contractor_id=proposal.contractor_id,
                position=position,
                file_name=item.upload.name.strip(),
                content_type=item.content_type,
                size_bytes=len(data),
                sha256=item.upload.sha256,
                data=data,
            )
        )
    session.flush()


def _remove_files(session: Session, proposal: Proposal, raw_ids) -> list[str]:
    ids = [i for i in (parse_id(r) for r in raw_ids) if i]
    if not ids:
        return []
    return list(
        session.execute(
            delete(ProposalFile)
            .where(ProposalFile.proposal_id == proposal.id, ProposalFile.id.in_(ids))
            .returning(ProposalFile.file_name)
        ).scalars()
    )


def _refused(exc: DBAPIError) -> Exception:
    """A guard's refusal (sql/project_guards.sql) in its own words: the project closed, or a proposal made meanwhile."""
    state = getattr(exc.orig, "sqlstate", None)
    if state not in ("23514", "23505", "42501"):
        return exc
    text = str((getattr(exc.orig, "diag", None) and exc.orig.diag.message_primary) or exc.orig)
    if state == "23505":
        return Conflict(ProposalRefusal.DUPLICATE.message)
    return InvalidTransition(text[:1].upper() + text[1:].rstrip(".") + ".")


def advance_bps_of(project) -> int | None:
    """The advance a completion project's contract takes, which its proposals' milestones leave out; None otherwise."""
    return (project.advance_bps or 0) if project.billing_mode == "completion" else None
