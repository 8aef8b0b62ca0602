"""Projects (DESIGN.md section 3, "Project and proposal"): the categories an admin keeps, and an owner's open call
for proposals: opened, edited while open, cancelled with a reason. The award is services/awards.py; proposals are
services/proposals.py. The database checks every rule again (sql/project_guards.sql)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, true, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import completion
from backoffice.domain import projects as rules
from backoffice.domain.completion import BillingMode
from backoffice.domain.currency import is_currency
from backoffice.domain.money import AmountError, parse_amount
from backoffice.domain.projects import Audience, ProjectStatus, ProposalStatus
from backoffice.domain.roles import MANAGERS, Role
from backoffice.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import Contractor, Organization, Project, ProjectCategory, ProjectInvitation, Proposal
from backoffice.queries.projects import today
from backoffice.services import audit
from backoffice.services.engagements import is_manager_member
from backoffice.services.validation import clean_date, clean_percent, clean_text, get_visible, parse_id

MAX_INVITED = 200

# The form field of a project's column, where they differ: the advance is typed as a percentage.
FIELD_OF = {"advance_bps": "advance"}


# --- categories (admin settings) -----------------------------------------------------------------------------------


def add_category(session: Session, actor: Actor, name: str) -> ProjectCategory:
    """A new category for projects; names are unique in the organization, whatever their case."""
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        clean = _category_name(session, actor, name)
        row = ProjectCategory(org_id=actor.org_id, name=clean)
        session.add(row)
        session.flush()
        audit.record(session, actor, "project_category.added", "project_category", row.id, {"name": clean})
    return row


def set_category_archived(session: Session, actor: Actor, category_id, archived: bool) -> ProjectCategory:
    """Archive a category (new projects no longer offer it; old ones keep it) or bring it back."""
    actor.require(Role.ADMIN)
    with unit_of_work(session):
        row = get_visible(session, ProjectCategory, category_id)
        if (row.archived_at is not None) != archived:
            row.archived_at = func.now() if archived else None
            session.flush()
            event = "project_category.archived" if archived else "project_category.restored"
            audit.record(session, actor, event, "project_category", row.id, {"name": row.name})
    return row


def _category_name(session: Session, actor: Actor, name: str) -> str:
    errors: dict[str, str] = {}
    clean = clean_text(name, "name", errors, label="category name", required=True, max_len=80)
    if errors:
        raise ValidationError(errors)
    taken = session.execute(
        select(func.count())
        .select_from(ProjectCategory)
        .where(ProjectCategory.org_id == actor.org_id, func.lower(ProjectCategory.name) == clean.lower())
    ).scalar_one()
    if taken:
        raise ValidationError({"name": f"There is a category called “{clean}” already."})
    return clean


# --- projects ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectInput:
    """A project as typed. Empty currency takes the organization's; an empty owner means the acting owner."""

    title: str = ""
    category_id: str = ""
    deadline: str = ""
    description: str = ""
    currency: str = ""
    budget: str = ""
    billing_mode: str = "milestone"
    advance: str = ""  # a completion project's advance, a percentage; empty takes the organization's default
    audience: str = Audience.INVITED.value
    owner_user_id: str = ""
    invited: tuple[str, ...] = ()  # contractor ids


def _clean(session: Session, actor: Actor, data: ProjectInput, project: Project | None = None) -> dict:
    org = session.execute(select(Organization).where(Organization.id == actor.org_id)).scalar_one()
    errors: dict[str, str] = {}
    values: dict = {
        "title": clean_text(data.title, "title", errors, label="title", required=True, max_len=200),
        "description": clean_text(
            data.description, "description", errors, label="description", required=False, max_len=10000, multiline=True
        )
        or "",
    }
    category_id = parse_id(data.category_id)
    category = category_id and session.get(ProjectCategory, category_id)
    if (
        not category
        or category.org_id != actor.org_id
        or (category.archived_at is not None and (project is None or project.category_id != category.id))
    ):
        errors["category_id"] = "Choose a category (an admin keeps the list under Settings → Project categories)."
    values["category_id"] = category_id
    deadline = clean_date(data.deadline, "deadline", errors, label="deadline for proposals")
    changed = deadline is not None and (project is None or deadline != project.deadline)
    if changed and (problem := rules.deadline_problem(deadline, today(session))):
        errors["deadline"] = problem
    values["deadline"] = deadline
    currency = (data.currency or "").strip().upper() or (project.currency if project else org.default_currency)
    if not is_currency(currency):
        errors["currency"] = "Choose a three-letter ISO 4217 currency code, such as USD or EUR."
    values["currency"] = currency
    budget = None
    if (data.budget or "").strip() and is_currency(currency):
        try:
            budget = parse_amount(data.budget, currency)
        except AmountError as exc:
            errors["budget"] = str(exc)
    values["budget_minor"] = budget
    if data.billing_mode not in rules.BILLING_MODES:
        errors["billing_mode"] = "Choose how the contract will be billed."
    values["billing_mode"] = data.billing_mode
    completion_mode = data.billing_mode == BillingMode.COMPLETION
    values["advance_bps"] = _advance(org, data, project, errors) if completion_mode else None
    if data.audience not in {a.value for a in Audience}:
        errors["audience"] = "Choose who may propose: the contractors you invite, or every contractor."
    values["audience"] = data.audience
    owner_id = parse_id(data.owner_user_id) if data.owner_user_id else (project.owner_user_id if project else None)
    if owner_id is None and actor.role == Role.OWNER:
        owner_id = actor.user_id
    if owner_id is None or not is_manager_member(session, owner_id, actor.org_id):
        errors["owner_user_id"] = "Choose the project owner who will compare the proposals and award the work."
    elif actor.role == Role.OWNER and owner_id != (project.owner_user_id if project else actor.user_id):
        errors["owner_user_id"] = "A project owner opens projects they own; an admin can name another owner."
    values["owner_user_id"] = owner_id
    invited = _invited(session, actor, data.invited, errors)
    if values["audience"] == Audience.INVITED and not invited:
        # setdefault: an id that is not a contractor of the list is said as such, not as "nobody invited"
        errors.setdefault(
            "invited", "Invite at least one contractor, or let every contractor of the organization propose."
        )
    if errors:
        raise ValidationError(errors)
    return values | {"invited": invited}


def _advance(org: Organization, data: ProjectInput, project: Project | None, errors: dict[str, str]) -> int | None:
    """A completion project's advance in basis points (domain.completion): typed, or else the project's own (an edit)
    or the organization's default (0 when it pays no advances). An advance the organization no longer pays is kept
    on a project that already asked it (its proposals priced it); a new or changed one is refused."""
    if project is not None and project.advance_bps is not None:
        default = project.advance_bps
    else:
        default = org.default_advance_bps if org.advances_enabled else 0
    bps = clean_percent(data.advance, "advance", errors, default=default)
    if bps is None:
        return None
    kept = project is not None and bps == project.advance_bps
    problem = completion.advance_problem(bps, org.advances_enabled or kept)
    if problem:
        errors["advance"] = problem
    return bps


def _invited(session: Session, actor: Actor, raw_ids, errors: dict[str, str]) -> list[uuid.UUID]:
    ids = list(dict.fromkeys(i for i in (parse_id(r) for r in raw_ids) if i))
    if len(ids) > MAX_INVITED:
        errors["invited"] = f"Invite at most {MAX_INVITED} contractors."
        return []
    found = (
        set(
            session.execute(
                select(Contractor.id).where(Contractor.org_id == actor.org_id, Contractor.id.in_(ids))
            ).scalars()
        )
        if ids
        else set()
    )
    if len(found) != len(ids) or any(r and parse_id(r) is None for r in raw_ids):
        errors["invited"] = "Choose contractors from the list."
    return [i for i in ids if i in found]


def get_project(session: Session, project_id, *, lock: bool = False) -> Project:
    """The project as RLS lets the caller see it, or NotFound. ``lock`` takes its row lock (the award's order)."""
    if not lock:
        return get_visible(session, Project, project_id)
    row_id = parse_id(project_id)
    row = (
        row_id
        and session.execute(
            select(Project).where(Project.id == row_id).with_for_update().execution_options(populate_existing=True)
        ).scalar_one_or_none()
    )
    if row is None:
        if row_id and session.get(Project, row_id) is not None:
            raise Forbidden("Only this project's owner or an admin can change it.")
        raise NotFound()
    return row


def require_runner(actor: Actor, project: Project) -> None:
    """Forbidden unless ``actor`` runs this project (domain.projects.can_run)."""
    if not rules.can_run(actor.role, actor.user_id, project.owner_user_id):
        raise Forbidden("Only this project's owner or an admin can change it.")


def open_project(session: Session, actor: Actor, data: ProjectInput) -> Project:
    """A new project, open for proposals from the contractors it invites (or every one); they are told."""
    actor.require(*MANAGERS)
    with unit_of_work(session):
        values = _clean(session, actor, data)
        invited = values.pop("invited")
        project = Project(org_id=actor.org_id, created_by=actor.user_id, **values)
        session.add(project)
        session.flush()
        _invite(session, actor, project, invited)
        audit.record(
            session, actor, "project.opened", "project", project.id, _jsonable(values) | {"invited": _ids(invited)}
        )
        queue.notify(session, actor.org_id, "project.opened", project.id)
    return project


def update_project(session: Session, actor: Actor, project_id, data: ProjectInput) -> Project:
    """Change an open project. Invitations may be added, or taken back from contractors that have not proposed;
    what it asks (domain.projects.FIXED_ONCE_PROPOSED) is fixed once someone has proposed. Newly invited contractors
    are told."""
    actor.require(*MANAGERS)
    with unit_of_work(session):
        project = get_project(session, project_id, lock=True)
        require_runner(actor, project)
        _require_open(project)
        values = _clean(session, actor, data, project)
        invited = values.pop("invited")
        proposed = set(
            session.execute(select(Proposal.contractor_id).where(Proposal.project_id == project.id)).scalars()
        )
        if proposed and (fixed := [k for k in rules.FIXED_ONCE_PROPOSED if values[k] != getattr(project, k)]):
            raise ValidationError(
                {
                    FIELD_OF.get(k, k): "Fixed once a contractor has proposed: the offers priced what the project "
                    "asked. Cancel it and open a new project to ask for something else."
                    for k in fixed
                }
            )
        current = set(
            session.execute(
                select(ProjectInvitation.contractor_id).where(ProjectInvitation.project_id == project.id)
            ).scalars()
        )
        dropped = current - set(invited)
        if kept := dropped & proposed:
            names = ", ".join(_contractor_names(session, kept))
            raise ValidationError({"invited": f"{names} proposed already, so stay invited."})
        changes = {
            k: {"before": _value(getattr(project, k)), "after": _value(v)}
            for k, v in values.items()
            if getattr(project, k) != v
        }
        added = [c for c in invited if c not in current]
        for contractor_id in dropped:
            session.execute(
                ProjectInvitation.__table__.delete().where(
                    ProjectInvitation.project_id == project.id, ProjectInvitation.contractor_id == contractor_id
                )
            )
        _invite(session, actor, project, added)
        if dropped or added:
            changes["invited"] = {"added": _ids(added), "removed": _ids(dropped)}
        if changes:
            for key, value in values.items():
                setattr(project, key, value)
            project.updated_at = func.now()
            session.flush()
            audit.record(session, actor, "project.updated", "project", project.id, changes)
        if added or ("audience" in changes and project.audience == Audience.ALL):
            queue.notify(session, actor.org_id, "project.opened", project.id)
    return project


def cancel_project(session: Session, actor: Actor, project_id, reason: str) -> Project:
    """Cancel an open project with a reason: every proposal still waiting is declined, and its author told."""
    actor.require(*MANAGERS)
    with unit_of_work(session):
        project = get_project(session, project_id, lock=True)
        require_runner(actor, project)
        _require_open(project)  # who and whether first: a missing reason is not the answer to "you may not"
        errors: dict[str, str] = {}
        text = clean_text(
            reason, "reason", errors, label="reason for cancelling", required=True, max_len=2000, multiline=True
        )
        if errors:
            raise ValidationError(errors)
        declined = decline_waiting(session, actor, project.id)
        project.status = ProjectStatus.CANCELLED.value
        project.cancelled_by, project.cancelled_at, project.cancel_reason = actor.user_id, func.now(), text
        project.updated_at = func.now()
        session.flush()
        audit.record(
            session, actor, "project.cancelled", "project", project.id, {"reason": text, "declined": _ids(declined)}
        )
        queue.notify(session, actor.org_id, "project.cancelled", project.id)
    return project


def decline_waiting(session: Session, actor: Actor, project_id, *, keep: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Decline every proposal of the project still submitted (but ``keep``), under their row locks; their ids."""
    rows = session.execute(
        update(Proposal)
        .where(
            Proposal.project_id == project_id,
            Proposal.status == ProposalStatus.SUBMITTED.value,
            Proposal.id != keep if keep else true(),
        )
        .values(status=ProposalStatus.DECLINED.value, decided_by=actor.user_id, decided_at=func.now())
        .returning(Proposal.id)
        .execution_options(synchronize_session=False)
    )
    return list(rows.scalars())


def _require_open(project: Project) -> None:
    if project.status not in rules.EDITABLE_PROJECT:
        raise InvalidTransition(
            f"This project is {ProjectStatus(project.status).label.lower()} and can no longer change."
        )


def _invite(session: Session, actor: Actor, project: Project, contractor_ids) -> None:
    for contractor_id in contractor_ids:
        session.add(
            ProjectInvitation(
                org_id=project.org_id, project_id=project.id, contractor_id=contractor_id, invited_by=actor.user_id
            )
        )
    session.flush()


def _contractor_names(session: Session, ids) -> list[str]:
    return sorted(session.execute(select(Contractor.legal_name).where(Contractor.id.in_(list(ids)))).scalars())


def _ids(ids) -> list[str]:
    return sorted(str(i) for i in ids)


def _value(v):
    return str(v) if isinstance(v, uuid.UUID) else v.isoformat() if hasattr(v, "isoformat") else v


def _jsonable(values: dict) -> dict:
    return {k: _value(v) for k, v in values.items()}
