"""Payment controls (DESIGN.md sections 3 and 4, issue 18): approval policies above an amount, the steps an
invoice passes before it is payable, delegation, holds, and "why isn't this payable yet".

The database enforces the same rules again (sql/controls.sql, sql/money.sql): ``applicable_policy`` is
``applicable_approval_policy()`` there and ``may_approve`` is ``may_approve_step()`` in sql/rules.sql;
tests/integration/test_controls_parity.py holds each pair equal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from backoffice.domain.roles import STAFF_ROLES, Role

# Who may be named by a step: the organization's own people, never a contractor's user (DESIGN.md section 1).
APPROVER_ROLES = STAFF_ROLES
# How many steps a policy may have, and how many people one step may name.
MAX_STEPS = 10
MAX_NAMED = 20


class StepStatus(StrEnum):
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return {"waiting": "Waiting", "approved": "Approved", "rejected": "Rejected"}[self.value]


@dataclass(frozen=True)
class Step:
    """One step of a policy: any one of the members with ``role``, or any one of the people ``user_ids``."""

    role: str | None = None
    user_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    def __post_init__(self):
        if (self.role is None) == (not self.user_ids):
            raise ValueError("a step names a role or people, not both")
        if self.role is not None and self.role not in APPROVER_ROLES:
            raise ValueError("a step's role is admin, owner or finance")
        if len(self.user_ids) > MAX_NAMED:
            raise ValueError(f"a step names at most {MAX_NAMED} people")


@dataclass(frozen=True)
class Policy:
    id: uuid.UUID
    currency: str
    min_amount: int  # minor units of ``currency``: payments of at least this need the steps
    steps: tuple[Step, ...] = ()


def policy_amount(gross: int) -> int:
    """The amount a policy's minimum is compared with: the approved work's gross, what the owner approved (before
    retainage is withheld and without the service fee), so a rule reads the way the milestone's amount reads."""
    return gross


def applicable_policy(policies: Iterable[Policy], currency: str, gross: int) -> Policy | None:
    """The policy an authorization of ``gross`` in ``currency`` starts under: of the live policies in that currency
    whose minimum it reaches, the one with the highest minimum (the most demanding rule that applies); None when
    none applies and the authorization is approved at once."""
    amount = policy_amount(gross)
    matching = [p for p in policies if p.currency == currency and p.min_amount <= amount]
    return max(matching, key=lambda p: p.min_amount, default=None)


def may_approve(step_role: str | None, step_user_ids: Iterable[uuid.UUID], role: str | None, user_id) -> bool:
    """Whether a member with ``role`` may decide a step naming ``step_role`` or ``step_user_ids``: a staff member
    with that role, or one of the people it names. A contractor's user never approves."""
    if role not in APPROVER_ROLES or user_id is None:
        return False
    return (step_role is not None and step_role == role) or user_id in set(step_user_ids)


def distinct_people_refusal(
    person: uuid.UUID, on_behalf_of: uuid.UUID | None, authorized_by: uuid.UUID, earlier: Sequence[uuid.UUID]
) -> str | None:
    """Why ``person`` (deciding for ``on_behalf_of``) may not decide a step of an invoice that ``authorized_by``
    authorized (step 0) and ``earlier`` people decided; None when they may. Approvers are distinct people."""
    people = {authorized_by, *earlier}
    if person in people or (on_behalf_of is not None and on_behalf_of in people):
        if person == authorized_by or on_behalf_of == authorized_by:
            return "You approved this work as its reviewer; another person approves the next step."
        return "You approved an earlier step of this payment; another person approves this one."
    return None


def delegation_covers(starts_on: date, ends_on: date, today: date) -> bool:
    return starts_on <= today <= ends_on


@dataclass(frozen=True)
class Blocker:
    """One thing that stands between an invoice and its payment, in words a person acts on."""

    kind: str  # approval, hold, contractor_hold, tax_form, acceptance, due_date, rail, batch
    words: str


def blockers(
    status: str,
    *,
    steps_left: Sequence[str] = (),
    invoice_hold: str | None = None,
    contractor_hold: str | None = None,
    tax_form: str | None = None,
    acceptance: str | None = None,
    due_date: date | None = None,
    today: date | None = None,
    rail: str | None = None,
) -> list[Blocker]:
    """Why an invoice is not payable yet ("why isn't this payable"), in the order a person clears them: the
    approval steps left (their words, e.g. "Step 2 of 2: Finance"), a hold on the invoice or its contractor, a
    missing tax form, the contractor's answer to its self-billed invoice (issue 21), a rail's refusal (``rail``), and a
    due date still ahead (which does not stop finance paying
    early, but is why nothing pays it automatically yet). Empty for an invoice that is paid, void or payable now."""
    if status in ("paid", "void"):
        return []
    found: list[Blocker] = []
    if status == "pending_approval":
        for words in steps_left:
            found.append(Blocker("approval", f"Waiting for approval — {words}"))
    if invoice_hold:
        found.append(Blocker("hold", f"On hold: {invoice_hold}"))
    if contractor_hold:
        found.append(Blocker("contractor_hold", f"The contractor is on hold: {contractor_hold}"))
    if tax_form:
        found.append(Blocker("tax_form", tax_form))
    if acceptance:
        found.append(Blocker("acceptance", acceptance))
    if rail:
        found.append(Blocker("rail", rail))
    if due_date is not None and today is not None and due_date > today and status in ("approved", "pending_approval"):
        found.append(Blocker("due_date", f"Not due until {due_date:%d %b %Y}"))
    return found


def stops_payment(found: Sequence[Blocker]) -> bool:
    """Whether any of ``found`` refuses an export or a payment (a due date ahead does not: finance may pay early)."""
    return any(b.kind != "due_date" for b in found)


# Role labels for a step that names a role: "Finance", "Admin", "Project owner".
def step_words(step_role: str | None, names: Sequence[str]) -> str:
    if step_role is not None:
        return f"any {Role(step_role).label.lower()}" if step_role != "finance" else "anyone in finance"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + f" or {names[-1]}"
