"""A draft engagement's milestone schedule: validated as typed, saved all at once.

Amounts come one of three ways: typed per milestone, as percentages of a contract value, or as an
equal split of it. Percentages and splits are allocated with the largest-remainder rule, so the
milestones always add up exactly to the contract value.

Under completion billing the milestones are tasks, and what they share is fixed by the terms: the contract value
less the advance (domain.completion.task_pool). Percentages and splits divide exactly that; typed amounts must add
up to exactly that, or nothing is saved.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain import completion
from backoffice.domain import engagements as rules
from backoffice.domain.completion import BillingMode
from backoffice.domain.money import (
    AmountError,
    allocate_by_percent,
    parse_amount,
    split_equally,
)
from backoffice.domain.percent import format_bps, parse_percent_to_bps
from backoffice.errors import Conflict, InvalidTransition, ValidationError
from backoffice.models import Engagement, Milestone
from backoffice.services import audit
from backoffice.services.engagements import completion_schedule_problem, get_engagement, require_manager
from backoffice.services.validation import clean_date, clean_text, parse_id

MAX_MILESTONES = 200
MODES = ("amounts", "percent", "equal")


@dataclass(frozen=True)
class RowInput:
    """One milestone row as typed. ``id`` names an existing milestone (empty for a new row)."""

    title: str = ""
    deliverable: str = ""
    amount: str = ""
    percent: str = ""
    due_date: str = ""
    id: str = ""

    def is_blank(self) -> bool:
        return not any(v.strip() for v in (self.title, self.deliverable, self.amount, self.percent, self.due_date))


@dataclass(frozen=True)
class ScheduleInput:
    rows: list[RowInput]
    mode: str = "amounts"
    contract_value: str = ""
    version: str = ""  # schedule_version() when the editor was opened; empty skips the check


@dataclass(frozen=True)
class CleanRow:
    title: str
    deliverable: str
    amount_minor: int
    due_date: date
    id: uuid.UUID | None = None


@dataclass
class Checked:
    """The outcome of checking a schedule: clean rows when there are no errors, and the amounts each
    row would get (shown next to percentages and splits before saving)."""

    rows: list[CleanRow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    amounts: dict[int, int] = field(default_factory=dict)  # row index -> minor units
    total: int = 0
    target: int | None = None  # what the rows must add up to, when the terms fix it (completion billing's pool)

    @property
    def left(self) -> int | None:
        """What the rows still lack to reach the target (negative: how much they are over), or None."""
        return None if self.target is None else self.target - self.total


def task_pool_of(engagement) -> int | None:
    """What a completion engagement's tasks share, the contract value less the advance; None under milestone billing
    (the milestones themselves are the contract value)."""
    if engagement.billing_mode != BillingMode.COMPLETION or engagement.contract_value_minor is None:
        return None
    return completion.task_pool(engagement.contract_value_minor, engagement.advance_minor)


def check_row(row: RowInput, prefix: str, currency: str, errors: dict[str, str], *, amount: bool = True):
    """Title, deliverable, due date (and the typed amount) of one row; messages under ``prefix``-field."""
    title = clean_text(row.title, f"{prefix}-title", errors, label="title", required=True, max_len=200)
    deliverable = (
        clean_text(
            row.deliverable,
            f"{prefix}-deliverable",
            errors,
            label="deliverable",
            required=False,
            max_len=4000,
            multiline=True,
        )
        or ""
    )
    due = clean_date(row.due_date, f"{prefix}-due_date", errors)
    minor = None
    if amount:
        try:
            minor = parse_amount(row.amount, currency)
        except AmountError as exc:
            errors[f"{prefix}-amount"] = str(exc)
    return title, deliverable, minor, due


def check_schedule(currency: str, data: ScheduleInput, *, pool: int | None = None, word: str = "milestone") -> Checked:
    """Check every row and the allocation; never raises for bad input (errors are in the result).

    ``pool``, when the terms fix what the rows share (completion billing), is what percentages and an equal split
    divide (the typed contract value is then ignored) and the ``target`` the result reports; ``word`` names a row.
    """
    out = Checked(target=pool)
    mode = data.mode if data.mode in MODES else "amounts"
    indexed = [(i, r) for i, r in enumerate(data.rows) if not r.is_blank()]
    if not indexed:
        out.errors["rows"] = f"Add at least one {word}."
        return out
    if len(indexed) > MAX_MILESTONES:
        out.errors["rows"] = f"An engagement can have at most {MAX_MILESTONES} {word}s."
        return out
    total = None
    if mode != "amounts" and pool is not None:
        total = pool
    elif mode != "amounts":
        try:
            total = parse_amount(data.contract_value, currency)
        except AmountError as exc:
            out.errors["contract_value"] = str(exc)
    parsed = {}
    for i, row in indexed:
        parsed[i] = check_row(row, f"rows-{i}", currency, out.errors, amount=mode == "amounts")
    if mode == "amounts":
        out.amounts = {i: p[2] for i, p in parsed.items() if p[2] is not None}
    elif mode == "percent":
        bps = {}
        for i, row in indexed:
            try:
                bps[i] = parse_percent_to_bps(row.percent)
                if bps[i] == 0:
                    out.errors[f"rows-{i}-percent"] = "Enter a percentage greater than zero."
            except ValueError as exc:
                out.errors[f"rows-{i}-percent"] = str(exc)
        if len(bps) == len(indexed) and not any(k.endswith("-percent") for k in out.errors):
            share = sum(bps.values())
            if share != 10_000:
                out.errors["rows"] = (
                    f"The percentages add up to {format_bps(share)}%; they must add up to exactly 100%."
                )
            elif total is not None:
                out.amounts = dict(zip(bps, allocate_by_percent(total, list(bps.values())), strict=True))
    elif total is not None:
        out.amounts = dict(zip((i for i, _ in indexed), split_equally(total, len(indexed)), strict=True))
    if mode != "amounts" and out.amounts and min(out.amounts.values()) <= 0:
        out.errors["contract_value" if pool is None else "rows"] = (
            f"Too small to give every {word} an amount; enter a larger contract value or fewer {word}s."
        )
    out.total = sum(out.amounts.values())
    if not out.errors:
        out.rows = [
            CleanRow(
                title=p[0],
                deliverable=p[1],
                amount_minor=out.amounts[i],
                due_date=p[3],
                id=parse_id(data.rows[i].id) if data.rows[i].id else None,
            )
            for i, p in parsed.items()
        ]
    return out


def schedule_version(session: Session, engagement_id) -> str:
    """A fingerprint of the saved schedule: it changes with any save or import, so an editor opened
    before one cannot silently remove milestones it never showed."""
    rows = session.execute(
        select(Milestone.id, Milestone.updated_at)
        .where(Milestone.engagement_id == engagement_id)
        .order_by(Milestone.id)
    ).all()
    return hashlib.sha256(repr([(str(i), u.isoformat()) for i, u in rows]).encode()).hexdigest()[:16]


def editable_draft(session: Session, actor: Actor, engagement_id) -> Engagement:
    engagement = get_engagement(session, engagement_id, lock=True)
    require_manager(actor, engagement)
    if engagement.status not in rules.EDITABLE:
        raise InvalidTransition(
            "Only a draft's milestones are edited here; once the work request is sent, use a change order."
        )
    return engagement


def save_schedule(session: Session, actor: Actor, engagement_id, data: ScheduleInput) -> list[Milestone]:
    """Replace a draft's schedule with these rows, in this order: all of them or, on any error, none.

    Rows naming an existing milestone update it; new rows are added; milestones left out are removed. Under completion
    billing the tasks share the contract value less the advance exactly: percentages and an equal split divide that,
    and typed amounts that add up to anything else are refused (ValidationError at "rows", naming both sums).
    """
    with unit_of_work(session):
        engagement = editable_draft(session, actor, engagement_id)
        if data.version and data.version != schedule_version(session, engagement.id):
            raise Conflict(
                "The milestones changed since you opened the editor (an import, or someone else saved). "
                "Nothing was saved; reload the page to start from the schedule as it is now."
            )
        checked = check_schedule(
            engagement.currency, data, pool=task_pool_of(engagement), word=completion.task_word(engagement.billing_mode)
        )
        typed = sum(not r.is_blank() for r in data.rows)
        if checked.target is not None and "rows" not in checked.errors and len(checked.amounts) == typed:
            # One rule, one wording: the send refuses the same schedule with the same words (services.engagements).
            problem = completion_schedule_problem(engagement, list(checked.amounts.values()))
            if problem:
                checked.errors["rows"] = problem
        if checked.errors:
            raise ValidationError(checked.errors)
        existing = {
            m.id: m
            for m in session.execute(select(Milestone).where(Milestone.engagement_id == engagement.id)).scalars()
        }
        keep = {r.id for r in checked.rows if r.id in existing}
        removed = [m for mid, m in existing.items() if mid not in keep]
        if removed:
            session.execute(delete(Milestone).where(Milestone.id.in_([m.id for m in removed])))
        result = []
        for seq, row in enumerate(checked.rows, start=1):
            values = dict(
                title=row.title,
                deliverable=row.deliverable,
                amount_minor=row.amount_minor,
                due_date=row.due_date,
                seq=seq,
            )
            if row.id in existing:
                m = existing[row.id]
                if any(getattr(m, k) != v for k, v in values.items()):
                    session.execute(
                        update(Milestone).where(Milestone.id == m.id).values(**values, updated_at=func.now())
                    )
            else:
                m = Milestone(
                    org_id=engagement.org_id,
                    contractor_id=engagement.contractor_id,
                    engagement_id=engagement.id,
                    **values,
                )
                session.add(m)
            result.append(m)
        session.flush()
        audit.record(
            session,
            actor,
            "engagement.schedule_saved",
            "engagement",
            engagement.id,
            {
                "mode": data.mode if data.mode in MODES else "amounts",
                "milestones": [
                    {"title": r.title, "amount_minor": r.amount_minor, "due_date": r.due_date.isoformat()}
                    for r in checked.rows
                ],
                "removed": len(removed),
                "contract_value": checked.total,
            },
        )
    return result


def append_milestones(session: Session, actor: Actor, engagement: Engagement, rows: list[CleanRow], source: str) -> int:
    """Add rows after a locked draft's last milestone (the caller has checked them and commits)."""
    count = session.execute(
        select(func.count()).select_from(Milestone).where(Milestone.engagement_id == engagement.id)
    ).scalar_one()
    if count + len(rows) > MAX_MILESTONES:
        raise ValidationError(
            {
                "rows": f"An engagement can have at most {MAX_MILESTONES} milestones; "
                f"it has {count} and this adds {len(rows)}."
            }
        )
    last = session.execute(
        select(func.coalesce(func.max(Milestone.seq), 0)).where(Milestone.engagement_id == engagement.id)
    ).scalar_one()
    for offset, row in enumerate(rows, start=1):
        session.add(
            Milestone(
                org_id=engagement.org_id,
                contractor_id=engagement.contractor_id,
                engagement_id=engagement.id,
                seq=last + offset,
                title=row.title,
                deliverable=row.deliverable,
                amount_minor=row.amount_minor,
                due_date=row.due_date,
            )
        )
    session.flush()
    audit.record(
        session,
        actor,
        "engagement.milestones_imported",
        "engagement",
        engagement.id,
        {
            "source": source,
            "count": len(rows),
            "total_minor": sum(r.amount_minor for r in rows),
        },
    )
    return len(rows)
