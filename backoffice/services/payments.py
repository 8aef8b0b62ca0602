"""Recording payments: per invoice, for a whole AP batch, or from a remittance file (DESIGN.md section 7).

One payment per invoice (a unique constraint); the invoice becomes paid with the payment's date in the
same transaction. By default whoever authorized a payment cannot record it (segregation of duties, an
organization setting); the database refuses it as well. Every path locks the invoices it pays, so two
people recording the same payment at once get one payment and one clear refusal.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.invoices import PAID_BY, InvoiceStatus, handed_to_rail, payment_lines
from backoffice.domain.money import AmountError, format_amount, parse_amount
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.errors import Conflict, Forbidden, InvalidTransition, ValidationError
from backoffice.models import ApExportBatch, Invoice, Organization, Payment, User
from backoffice.queries.payability import approvers_of, holds_on
from backoffice.queries.tax import tax_form_blocks
from backoffice.services import audit
from backoffice.services.ap_export import get_batch, payment_refusal
from backoffice.services.invoices import get_invoice, write_ledger
from backoffice.services.remittance_advice import announce_run
from backoffice.services.validation import clean_date, clean_text

METHODS = {method: words for method, words in PAID_BY.items() if method != "stripe"}  # recorded by hand
# How a recorded payment was made, in words: the methods a person records, and the payment rails' own.
METHOD_LABELS = dict(PAID_BY)
MAX_REMITTANCE_BYTES = 2 * 1024 * 1024
MAX_REMITTANCE_ROWS = 5000


@dataclass(frozen=True)
class PaymentInput:
    paid_at: str
    reference: str
    method: str


@dataclass(frozen=True)
class CleanPayment:
    paid_at: date
    reference: str
    method: str


def _today() -> date:
    return datetime.now(UTC).date()


def clean_payment(data: PaymentInput, errors: dict[str, str], *, not_before: date | None = None) -> CleanPayment | None:
    paid_at = clean_date(data.paid_at, "paid_at", errors, label="date paid")
    if paid_at and paid_at > _today():
        errors["paid_at"] = f"A payment is recorded once it is made; {paid_at:%d %b %Y} is in the future."
    elif paid_at and not_before and paid_at < not_before:
        errors["paid_at"] = f"The payment cannot predate its authorization on {not_before:%d %b %Y}."
    reference = clean_text(
        data.reference,
        "reference",
        errors,
        label="payment reference (bank or check number)",
        required=True,
        max_len=200,
    )
    if data.method not in METHODS:
        errors["method"] = "Choose how it was paid."
    if errors:
        return None
    return CleanPayment(paid_at, reference, data.method)


def record_payment(session: Session, actor: Actor, invoice_id, data: PaymentInput) -> Payment:
    """Record how one authorized invoice was paid. Raises Forbidden (not finance, or segregation of
    duties), Conflict (paid already), InvalidTransition (void) or ValidationError at the field."""
    _require_finance(actor)
    with unit_of_work(session):
        invoice = get_invoice(session, invoice_id, lock=True)
        _payable(session, invoice)
        errors: dict[str, str] = {}
        clean = clean_payment(data, errors, not_before=invoice.issued_on)
        if errors:
            raise ValidationError(errors)
        _segregation(session, actor, [invoice])
        run_id = uuid.uuid4()
        payment = _pay(session, actor, invoice, clean, source="manual", run_id=run_id)
        announce_run(session, invoice.org_id, run_id)
    return payment


MAX_AT_ONCE = 500  # the payment queue's page and selection: a run this size writes in well under a second


def record_payments(session: Session, actor: Actor, invoice_ids, data: PaymentInput) -> list[Payment]:
    """Record several authorized invoices as paid at once (the payment queue's selection): one payment run, same
    date, reference and method, so each contractor paid hears once, every invoice listed, and each engagement owner
    once (issue 22). All or nothing: the first invoice that cannot be paid refuses the run in its words (Conflict,
    InvalidTransition, Forbidden) or ValidationError at the field; nothing is recorded."""
    _require_finance(actor)
    ids = list(dict.fromkeys(str(i) for i in invoice_ids))
    if not ids:
        raise ValidationError({"invoice_ids": "Choose at least one payment."})
    if len(ids) > MAX_AT_ONCE:
        raise ValidationError({"invoice_ids": f"Record at most {MAX_AT_ONCE} payments at once."})
    with unit_of_work(session):
        # One lock order (by id), as a batch's: two runs over the same invoices take turns, never deadlock.
        invoices = [get_invoice(session, i, lock=True) for i in sorted(ids)]
        for invoice in sorted(invoices, key=lambda i: i.number):
            _payable(session, invoice)
        errors: dict[str, str] = {}
        clean = clean_payment(data, errors, not_before=max(i.issued_on for i in invoices))
        if errors:
            raise ValidationError(errors)
        _segregation(session, actor, invoices)
        run_id = uuid.uuid4()
        paid = [
            _pay(session, actor, invoice, clean, source="manual", run_id=run_id)
            for invoice in sorted(invoices, key=lambda i: i.number)
        ]
        announce_run(session, actor.org_id, run_id)
    return paid


def record_batch_payment(session: Session, actor: Actor, batch_id, data: PaymentInput) -> list[Payment]:
    """Record one payment run for every unpaid invoice of a live batch (same date, reference, method): each
    contractor paid hears once, with its remittance advice."""
    _require_finance(actor)
    with unit_of_work(session):
        batch = get_batch(session, batch_id, lock=True)
        if batch.status != "live":
            raise InvalidTransition(f"Batch {batch.number} is void; its payments go into a new export.")
        invoices = list(
            session.execute(
                select(Invoice)
                .where(Invoice.batch_id == batch.id, Invoice.status == InvoiceStatus.EXPORTED.value)
                .order_by(Invoice.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalars()
        )
        if not invoices:
            raise Conflict(f"Every payment of batch {batch.number} is recorded already.")
        errors: dict[str, str] = {}
        clean = clean_payment(data, errors, not_before=max(i.issued_on for i in invoices))
        if errors:
            raise ValidationError(errors)
        # A batch's invoices are exported: only a hold stops their payment. The contractor's answer to a self-billed
        # invoice does not (acceptance_blocks leaves exported invoices out): the payment may have gone out already.
        held = holds_on(session, invoices)
        if held:
            named = "; ".join(f"{i.invoice_number}: {held[i.id]}" for i in invoices if i.id in held)
            raise InvalidTransition(
                f"Some payments of batch {batch.number} are on hold ({named}). Release the holds first."
            )
        _segregation(session, actor, invoices)
        run_id = uuid.uuid4()
        payments = [
            _pay(session, actor, invoice, clean, source="batch", run_id=run_id, batch=batch) for invoice in invoices
        ]
        announce_run(session, batch.org_id, run_id)
    return payments


def _require_finance(actor: Actor) -> None:
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance and admins record payments.")


def _payable(session: Session, invoice: Invoice) -> None:
    status = InvoiceStatus(invoice.status)
    if status == InvoiceStatus.PAID:
        raise Conflict(already_paid(session, invoice))
    if in_flight(invoice):
        raise Conflict(IN_FLIGHT.format(number=invoice.invoice_number))
    if not status.payable:
        raise InvalidTransition(
            f"{invoice.invoice_number} is {status.label.lower()}; only an authorized or exported "
            "payment can be recorded as paid."
        )
    held = holds_on(session, [invoice]).get(invoice.id)
    if held:
        raise InvalidTransition(f"{invoice.invoice_number} cannot be paid: {held[0].lower()}{held[1:]}")
    if status == InvoiceStatus.APPROVED:
        # The organization may require a tax form first (issue 18; sql/tax.sql refuses the move too).
        blocked = tax_form_blocks(session, [invoice.contractor_id]).get(invoice.contractor_id)
        if blocked:
            raise Conflict(f"{invoice.invoice_number} cannot be paid: {blocked}.")


IN_FLIGHT = (
    "{number} is being paid through Stripe; it cannot be recorded as paid another way. If Stripe refuses it, it "
    "goes on hold and can be paid otherwise."
)


def in_flight(invoice: Invoice) -> bool:
    """Handed to a payment rail: exported in no AP batch (a payout attempt in flight; sql/rails.sql)."""
    return handed_to_rail(invoice.status, in_batch=invoice.batch_id is not None)


def already_paid(session: Session, invoice: Invoice) -> str:
    row = session.execute(
        select(Payment.paid_at, Payment.reference, User.name)
        .join(User, User.id == Payment.recorded_by, isouter=True)
        .where(Payment.invoice_id == invoice.id, Payment.reversed_at.is_(None))
    ).one_or_none()
    if row is None:
        return f"{invoice.invoice_number} is paid already. Nothing was changed."
    return (
        f"{invoice.invoice_number} was already paid on {row.paid_at:%d %b %Y} (reference {row.reference}), "
        f"recorded by {row.name or 'another user'}. Nothing was changed."
    )


def _segregation(session: Session, actor: Actor, invoices: list[Invoice]) -> None:
    enforced = session.execute(
        select(Organization.segregation_of_duties).where(Organization.id == actor.org_id)
    ).scalar_one()
    approved = approvers_of(session, invoices) if enforced else {}
    own = [i.invoice_number for i in invoices if actor.user_id in approved.get(i.id, ())]
    if enforced and own:
        raise Forbidden(
            f"Segregation of duties: you approved {', '.join(own[:5])}{' and more' if len(own) > 5 else ''}, "
            "so someone else in finance must record the payment. An admin can change this in Settings."
        )


def _pay(
    session: Session,
    actor: Actor,
    invoice: Invoice,
    clean: CleanPayment,
    *,
    source: str,
    run_id: uuid.UUID,
    batch: ApExportBatch | None = None,
) -> Payment:
    """One invoice's payment, part of the run ``run_id``; the caller announces the run once it is all written."""
    try:
        with session.begin_nested():
            payment_id = session.execute(
                insert(Payment)
                .values(
                    org_id=invoice.org_id,
                    contractor_id=invoice.contractor_id,
                    invoice_id=invoice.id,
                    amount_minor=invoice.net_minor,
                    currency=invoice.currency,
                    paid_at=clean.paid_at,
                    reference=clean.reference,
                    method=clean.method,
                    source=source,
                    batch_id=batch.id if batch else None,
                    recorded_by=actor.user_id,
                    run_id=run_id,
                )
                .returning(Payment.id)
            ).scalar_one()
    except IntegrityError as exc:
        # The invoice lock makes this unreachable for the app; it backs up a writer that skipped it.
        if getattr(exc.orig.diag, "constraint_name", None) == "payments_one_per_invoice":  # a standing payment
            raise Conflict(already_paid(session, invoice)) from None
        raise
    try:
        mark_paid(
            session,
            actor,
            invoice,
            paid_at=clean.paid_at,
            reference=clean.reference,
            method=clean.method,
            source=source,
            batch=batch.number if batch else None,
        )
    except DBAPIError as exc:
        # The doors asked first; a guard refuses what changed since (a rejection committed while this waited on the
        # invoice's lock) in its words, and the whole run is rolled back.
        refused = payment_refusal(exc)
        if refused is None:
            raise
        raise Conflict(f"{refused} Nothing was recorded.") from None
    return session.get(Payment, payment_id)


def mark_paid(
    session: Session,
    actor: Actor,
    invoice: Invoice,
    *,
    paid_at: date,
    reference: str,
    method: str,
    source: str,
    **facts,
) -> None:
    """What every rail's payment does once its row is written: the invoice paid on that day, the ledger's payment
    lines, the audit event (with the rail's own ``facts``). In the caller's transaction."""
    session.execute(
        update(Invoice)
        .where(Invoice.org_id == invoice.org_id, Invoice.id == invoice.id)
        .values(status=InvoiceStatus.PAID.value, paid_at=paid_at)
    )
    write_ledger(session, invoice, "paid", payment_lines(invoice.net_minor))
    audit.record(
        session,
        actor,
        "payment.recorded",
        "invoice",
        invoice.id,
        {
            "invoice_number": invoice.invoice_number,
            "amount_minor": invoice.net_minor,
            "currency": invoice.currency,
            "paid_at": paid_at.isoformat(),
            "reference": reference,
            "method": method,
            "source": source,
            **facts,
        },
    )


# ---------------------------------------------------------------------------------------------
# Remittance import: a CSV from the bank or payment provider, one row per invoice paid.
# ---------------------------------------------------------------------------------------------

_HEADERS = {
    "invoice_number": (
        "invoice number",
        "invoice",
        "invoice_number",
        "invoice no",
        "invoice no.",
        "bill no.",
        "bill no",
        "number",
    ),
    "amount": ("amount", "amount paid", "paid amount", "net"),
    "paid_at": ("paid date", "paid_at", "date paid", "payment date", "date", "paid on"),
    "reference": ("reference", "payment reference", "ref", "transaction id"),
}


@dataclass
class RemittanceRow:
    line: int
    invoice_number: str
    amount_text: str
    paid_at_text: str
    reference: str
    invoice: Invoice | None = None
    paid_at: date | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class RemittancePreview:
    rows: list[RemittanceRow]
    method: str
    file_problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.file_problem and bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def problem_count(self) -> int:
        return sum(1 for r in self.rows if not r.ok)

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for r in self.rows:
            if r.invoice is not None:
                totals[r.invoice.currency] = totals.get(r.invoice.currency, 0) + r.invoice.net_minor
        return totals


def preview_remittance(
    session: Session, actor: Actor, content: bytes, method: str = "ach", *, lock: bool = False
) -> RemittancePreview:
    """Check every row of a remittance file against the invoice it names: it exists in this organization,
    the amount is its net payable, it is not paid already (nor twice in the file), the date and reference
    are valid, and segregation of duties allows it. Writes nothing."""
    _require_finance(actor)
    if method not in METHODS:
        return RemittancePreview([], method, "Choose how these payments were made.")
    if len(content) > MAX_REMITTANCE_BYTES:
        return RemittancePreview(
            [], method, f"The file is larger than {MAX_REMITTANCE_BYTES // (1024 * 1024)} MB; split it."
        )
    try:
        textual = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return RemittancePreview([], method, "The file is not UTF-8 text. Export it from your bank as CSV (UTF-8).")
    try:
        return _read_remittance(session, actor, textual, method, lock)
    except csv.Error as exc:
        return RemittancePreview([], method, f"The file is not a readable CSV ({exc}). Export it again as CSV.")


def _read_remittance(session: Session, actor: Actor, textual: str, method: str, lock: bool) -> RemittancePreview:
    reader = csv.reader(io.StringIO(textual))
    header = next(reader, None)
    if not header:
        return RemittancePreview([], method, "The file is empty. It needs a header row and one row per payment.")
    columns = {}
    normalized = [h.strip().lower() for h in header]
    for key, names in _HEADERS.items():
        index = next((normalized.index(n) for n in names if n in normalized), None)
        if index is None:
            return RemittancePreview(
                [],
                method,
                f"The header row has no “{names[0]}” column. Expected columns: "
                "invoice number, amount, paid date, reference.",
            )
        columns[key] = index
    rows = []
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        cell = lambda key, values=values: values[columns[key]].strip() if columns[key] < len(values) else ""  # noqa: E731
        rows.append(RemittanceRow(line, cell("invoice_number"), cell("amount"), cell("paid_at"), cell("reference")))
        if len(rows) > MAX_REMITTANCE_ROWS:
            return RemittancePreview([], method, f"The file has more than {MAX_REMITTANCE_ROWS:,} payments; split it.")
    if not rows:
        return RemittancePreview([], method, "The file has a header but no payments.")
    numbers = {r.invoice_number for r in rows if r.invoice_number}
    query = select(Invoice).where(Invoice.invoice_number.in_(numbers)).order_by(Invoice.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    invoices = {i.invoice_number: i for i in session.execute(query).scalars()}
    enforced = session.execute(
        select(Organization.segregation_of_duties).where(Organization.id == actor.org_id)
    ).scalar_one()
    held = holds_on(session, invoices.values())
    # A contractor without the tax form the organization requires is not paid either (issue 18; sql/tax.sql).
    untaxed = tax_form_blocks(session, {i.contractor_id for i in invoices.values()})
    for invoice in invoices.values():
        if invoice.id not in held and invoice.contractor_id in untaxed and invoice.status == "approved":
            held[invoice.id] = untaxed[invoice.contractor_id]
    seen: dict[str, int] = {}
    for row in rows:
        _check_row(session, actor, row, invoices, seen, enforced, held)
    return RemittancePreview(rows, method)


def _check_row(
    session,
    actor,
    row: RemittanceRow,
    invoices: dict[str, Invoice],
    seen: dict[str, int],
    enforced: bool,
    held: dict[uuid.UUID, str],
) -> None:
    if not row.invoice_number:
        row.problems.append("No invoice number.")
        return
    row.invoice = invoices.get(row.invoice_number)
    if row.invoice is None:
        row.problems.append(f"No invoice {row.invoice_number} in this organization.")
        return
    invoice = row.invoice
    if row.invoice_number in seen:
        row.problems.append(
            f"{row.invoice_number} is also on line {seen[row.invoice_number]}: an invoice is paid once."
        )
    seen.setdefault(row.invoice_number, row.line)
    status = InvoiceStatus(invoice.status)
    if status == InvoiceStatus.PAID:
        row.problems.append(already_paid(session, invoice).replace(" Nothing was changed.", ""))
    elif in_flight(invoice):
        row.problems.append(IN_FLIGHT.format(number=invoice.invoice_number))
    elif not status.payable:
        row.problems.append(f"{invoice.invoice_number} is {status.label.lower()}.")
    elif invoice.id in held:  # as _payable says of one payment (the database refuses it too)
        words = held[invoice.id]
        row.problems.append(f"{invoice.invoice_number} cannot be paid: {words[0].lower()}{words[1:]}")
    try:
        amount = parse_amount(row.amount_text, invoice.currency)
        if amount != invoice.net_minor:
            row.problems.append(
                f"Amount {format_amount(amount, invoice.currency)} does not match the net payable "
                f"{format_amount(invoice.net_minor, invoice.currency)}."
            )
    except AmountError as exc:
        row.problems.append(f"Amount: {exc}")
    errors: dict[str, str] = {}
    clean = clean_payment(PaymentInput(row.paid_at_text, row.reference, "other"), errors, not_before=invoice.issued_on)
    row.problems.extend(errors.values())
    row.paid_at = clean.paid_at if clean else None
    if enforced and actor.user_id in approvers_of(session, [invoice])[invoice.id]:
        row.problems.append("Segregation of duties: you approved this payment; someone else must record it.")


def import_remittance(session: Session, actor: Actor, content: bytes, method: str) -> list[Payment]:
    """Record every payment of the file, or none: the rows are checked again under the invoices' locks,
    and a single problem refuses the whole file (ValidationError naming the lines). The file is one payment
    run: each contractor paid hears once, with its remittance advice."""
    with unit_of_work(session):
        preview = preview_remittance(session, actor, content, method, lock=True)
        if not preview.ok:
            problems = (
                preview.file_problem
                or "; ".join(f"line {r.line}: {r.problems[0]}" for r in preview.rows if not r.ok)[:1500]
            )
            raise ValidationError({"file": f"Nothing was imported. {problems}"})
        run_id = uuid.uuid4()
        payments = [
            _pay(
                session,
                actor,
                row.invoice,
                CleanPayment(row.paid_at, row.reference, method),
                source="remittance",
                run_id=run_id,
            )
            for row in preview.rows
        ]
        announce_run(session, actor.org_id, run_id)
        audit.record(
            session,
            actor,
            "remittance.imported",
            "payment",
            None,
            {"rows": len(payments), "method": method, "totals": {c: t for c, t in preview.totals().items()}},
        )
    return payments


def payment_of(session: Session, invoice_id: uuid.UUID) -> Payment | None:
    return session.execute(
        select(Payment).where(Payment.invoice_id == invoice_id, Payment.reversed_at.is_(None))
    ).scalar_one_or_none()
