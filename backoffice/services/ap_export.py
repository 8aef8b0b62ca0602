"""AP export batches (DESIGN.md section 7): finance turns authorized payments into a file their
accounting system imports, and each invoice is exported once.

In one transaction: the batch row is written; its invoices move approved -> exported into it in one
UPDATE (which takes their row locks, so an overlapping export waits and then finds them taken; the
database checks the batch once for the statement, not once per invoice); PostgreSQL
renders the rows with COPY straight from those invoices, streamed into 1 MiB chunks while the sha256
is computed; the batch is sealed with size, sha256, row count and total. At commit the database checks
the seal against the stored bytes and the invoices. The stored bytes are what every download returns.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from psycopg import errors as pg_errors
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backoffice import formatting
from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.ap_export import (
    AMOUNT_FIELDS,
    DATE_FIELDS,
    DATE_FORMATS,
    Layout,
    Preset,
    file_name,
    layout_for,
)
from backoffice.domain.currency import is_currency, minor_units
from backoffice.domain.invoices import InvoiceKind, InvoiceStatus
from backoffice.domain.money import format_amount
from backoffice.domain.roles import FINANCE_ROLES, Role
from backoffice.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.jobs import queue
from backoffice.models import ApExportBatch, ApExportChunk, Hold, Invoice, Organization
from backoffice.queries.payability import acceptance_block_states, acceptance_blocks, holds_on
from backoffice.queries.tax import tax_form_blocks
from backoffice.services import audit
from backoffice.services.validation import clean_date, clean_text, get_visible, parse_id

CHUNK = 1024 * 1024
MAX_SELECTED = 100_000

# What each field holds, as SQL over invoices i, contractors c, engagements e, organizations o and
# milestones m. Constant strings only: a layout chooses among them, never writes SQL.
_TEXT_SQL = {
    "invoice_number": "i.invoice_number",
    "vendor_name": "c.legal_name",
    "vendor_email": "c.email",
    "vendor_id": "c.ap_vendor_id",
    "terms": "case when e.payment_terms_days = 0 then 'Due on receipt' else 'Net ' || e.payment_terms_days end",
    "description": "i.description",
    "engagement": "e.title",
    "sow_reference": "e.sow_reference",
    "milestone": "m.title",
    # The kind in words: domain.invoices.InvoiceKind's labels, written out once from the enum (constants only).
    "kind": "case i.kind " + " ".join(f"when '{k.value}' then '{k.label}'" for k in InvoiceKind) + " end",
    "currency": "i.currency",
    "account": "o.ap_expense_account",
    "quantity": "'1'",
    "tax_type": "'Tax Exempt'",
    "blank": "null",
}
_DATE_COLUMN = {"invoice_date": "i.issued_on", "due_date": "i.due_date"}
_AMOUNT_COLUMN = {
    "gross": "i.gross_minor",
    "retainage": "i.retainage_minor",
    "net": "i.net_minor",
    "fee": "i.fee_minor",
    "total": "i.total_minor",
}


def _cell_sql(field: str, layout: Layout, currency: str) -> str:
    if field in DATE_FIELDS:
        return f"to_char({_DATE_COLUMN[field]}, '{DATE_FORMATS[layout.date_format][2]}')"
    if field in AMOUNT_FIELDS:
        # Exact decimal text from integer minor units (amounts are never negative): 125050 -> 1250.50.
        column, exp = _AMOUNT_COLUMN[field], minor_units(currency)
        if exp == 0:
            return f"{column}::text"
        return f"({column} / {10**exp})::text || '.' || lpad(mod({column}, {10**exp})::text, {exp}, '0')"
    return f"ap_csv_text({_TEXT_SQL[field]})"


def rows_sql(layout: Layout, currency: str) -> str:
    """SELECT of the batch's rows (parameter: the batch id), in invoice-number order."""
    cells = ", ".join(_cell_sql(c.field, layout, currency) for c in layout.columns)
    return (
        f"select {cells} from invoices i join contractors c on c.id = i.contractor_id"
        " join engagements e on e.id = i.engagement_id join organizations o on o.id = i.org_id"
        " left join milestones m on m.id = i.milestone_id"
        " where i.batch_id = %(batch)s order by i.number"
    )


@dataclass(frozen=True)
class Selection:
    """Either the invoices ticked on the payment queue, or "all authorized, due by DATE, in CURRENCY"."""

    invoice_ids: tuple[str, ...] = ()
    due_by: str = ""
    currency: str = ""
    preset: str = ""  # empty: the organization's preset


def create_batch(session: Session, actor: Actor, selection: Selection) -> ApExportBatch:
    """Export the selected authorized invoices as one file in one currency. Raises Forbidden,
    ValidationError (nothing selected, several currencies, a bad date or preset) or Conflict (some
    were exported or paid meanwhile: none is exported then)."""
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance and admins export payments.")
    with unit_of_work(session):
        org = session.execute(select(Organization).where(Organization.id == actor.org_id)).scalar_one()
        preset, layout = _layout_of(org, selection.preset)
        ids, where, params, currency = _where(session, selection, tax_form_required=org.tax_form_required)
        batch_id = uuid.uuid4()
        session.execute(
            insert(ApExportBatch).values(
                id=batch_id,
                org_id=actor.org_id,
                number=0,
                currency=currency,
                preset=preset.value,
                layout=layout.as_json(),
                selection=_selection_json(selection, ids, currency),
                created_by=actor.user_id,
            )
        )
        # The export's sorts and the UPDATE's transition tables (sql/money.sql) fit in memory: for 100,000
        # invoices they spill to disk at the default 4 MB (about 100 ms of a 1.2 s export). This transaction's.
        session.execute(text("select set_config('work_mem', '64MB', true)"))
        # Exactly an export's move, exported_at included: the database then checks the batch once for the
        # whole statement instead of once per invoice (invoices_exported_check in sql/money.sql).
        try:
            moved = session.execute(
                text(
                    "update invoices i set status = 'exported', batch_id = :batch, exported_at = now()"
                    f" where i.status = 'approved' and {where}"
                ),
                {**params, "batch": batch_id},
            ).rowcount
        except DBAPIError as exc:
            if isinstance(exc.orig, pg_errors.DeadlockDetected | pg_errors.LockNotAvailable):
                raise Conflict(
                    "Another export took some of these payments at the same moment. Reload the queue and try again."
                ) from None
            refused = payment_refusal(exc)
            if refused:  # what changed while the export waited on the invoices' locks (a rejection committed)
                raise Conflict(f"{refused} Nothing was exported.") from None
            raise
        if not moved or (ids and moved != len(ids)):
            if ids:  # read before the unit of work rolls back: the rows this export moved are told apart
                raise Conflict(_taken_message(session, ids, batch_id))
            raise ValidationError({"due_by": _nothing_due_message(session, currency, params["due_by"])})
        size, digest = _write_file(session, actor.org_id, batch_id, layout, currency)
        # invoice_ids in invoice-number order: the database compares it with its own list at commit.
        session.execute(
            text(
                "update ap_export_batches b set size_bytes = :size, sha256 = :sha, row_count = t.n,"
                "       total_minor = t.total,"
                "       invoice_ids = t.ids"
                "  from (select count(*) as n, sum(net_minor) as total, array_agg(id order by number) as ids"
                "          from invoices where batch_id = :batch) t"
                " where b.id = :batch"
            ),
            {"size": size, "sha": digest, "batch": batch_id},
        )
        batch = session.get(ApExportBatch, batch_id, populate_existing=True)
        audit.record(
            session,
            actor,
            "ap_export.created",
            "ap_export_batch",
            batch.id,
            {
                "number": batch.number,
                "preset": batch.preset,
                "currency": currency,
                "rows": batch.row_count,
                "total_minor": batch.total_minor,
                "sha256": digest,
                "size_bytes": size,
                "selection": batch.selection,
            },
        )
        queue.notify(session, batch.org_id, "batch.exported", batch.id)
    return batch


def _layout_of(org: Organization, chosen: str) -> tuple[Preset, Layout]:
    try:
        preset = Preset(chosen or org.ap_export_preset)
    except ValueError:
        raise ValidationError({"preset": "Choose an export layout."}) from None
    try:
        return preset, layout_for(preset, org.ap_export_columns, org.ap_export_date_format, org.ap_export_bom)
    except ValueError as exc:
        raise ValidationError({"preset": f"The custom layout in Settings is incomplete: {exc}"}) from None


def _where(
    session: Session, selection: Selection, *, tax_form_required: bool
) -> tuple[list[uuid.UUID], str, dict, str]:
    """The invoices to export as an SQL condition, and the batch's currency."""
    if selection.invoice_ids:
        ids = sorted({parse_id(raw) for raw in selection.invoice_ids} - {None})
        if not ids or len(ids) != len(set(selection.invoice_ids)):
            raise NotFound()
        if len(ids) > MAX_SELECTED:
            raise ValidationError({"invoice_ids": f"Export at most {MAX_SELECTED:,} payments in one batch."})
        currencies = session.execute(
            select(Invoice.currency, func.count()).where(Invoice.id.in_(ids)).group_by(Invoice.currency)
        ).all()
        if sum(n for _, n in currencies) != len(ids):
            raise NotFound()
        if len(currencies) > 1:
            found = ", ".join(sorted(c for c, _ in currencies))
            raise ValidationError(
                {
                    "invoice_ids": f"A batch is in one currency; the selection has {found}. "
                    "Filter the queue by currency and select again."
                }
            )
        held = holds_on(session, session.execute(select(Invoice).where(Invoice.id.in_(ids))).scalars())
        if held:
            named = "; ".join(
                sorted(
                    f"{n}: {held[i]}"
                    for i, n in session.execute(
                        select(Invoice.id, Invoice.invoice_number).where(Invoice.id.in_(list(held)))
                    ).all()
                )[:5]
            )
            raise ValidationError({"invoice_ids": f"These payments cannot be exported now ({named}). Unselect them."})
        contractors = session.execute(select(Invoice.contractor_id).where(Invoice.id.in_(ids)).distinct()).scalars()
        blocked = tax_form_blocks(session, contractors)
        if blocked:
            numbers = session.execute(
                select(Invoice.invoice_number, Invoice.contractor_id)
                .where(Invoice.id.in_(ids), Invoice.contractor_id.in_(list(blocked)))
                .order_by(Invoice.number)
                .limit(5)
            ).all()
            raise Conflict("; ".join(f"{n} cannot be exported: {blocked[c]}" for n, c in numbers) + ".")
        return ids, "i.id = any(:ids)", {"ids": ids}, currencies[0][0]
    errors: dict[str, str] = {}
    due_by = clean_date(selection.due_by, "due_by", errors, label="due-by date")
    currency = (selection.currency or "").strip().upper()
    if not is_currency(currency):
        errors["currency"] = "Choose the batch's currency: a batch is in one currency."
    if errors:
        raise ValidationError(errors)
    # Nothing held is exported (issue 18): "all due by" leaves out what a live hold stops, named by the few holds
    # there are (the database refuses the same: invoices_exported_check). A join against the holds in the UPDATE
    # cost 60 ms of an export of 100,000 invoices (bench/ap_export.py); two arrays, empty as a rule, cost nothing.
    held_invoices, held_contractors = _live_holds(session)
    # What the contractor's answer to its self-billed invoice stops (issue 21): rejections, and where the organization
    # requires acceptance, what is not accepted yet (sql/self_billing.sql refuses the same).
    held_invoices = sorted(set(held_invoices) | set(acceptance_blocks(session, None)))
    where = (
        "i.currency = :currency and i.due_date <= :due_by"
        " and not (i.id = any(:held_invoices)) and not (i.contractor_id = any(:held_contractors))"
    )
    params = {
        "currency": currency,
        "due_by": due_by,
        "held_invoices": held_invoices,
        "held_contractors": held_contractors,
    }
    if not tax_form_required:
        return [], where, params, currency
    # Everything due but what the organization's tax-form rule blocks (issue 18): those wait, the rest goes. (Asked
    # only where the rule is on: it reads every contractor with a payment due, 100,000 invoices at a large one.)
    due = session.execute(
        select(Invoice.contractor_id)
        .where(Invoice.status == "approved", Invoice.currency == currency, Invoice.due_date <= due_by)
        .distinct()
    ).scalars()
    blocked = sorted(tax_form_blocks(session, due))
    where += " and not (i.contractor_id = any(:blocked))"
    return [], where, params | {"blocked": blocked}, currency


def payment_refusal(exc: DBAPIError) -> str | None:
    """The words of a guard refusing to export or pay an invoice (sql/self_billing.sql, sql/tax.sql: SQLSTATE 23514,
    "invoice … cannot be exported or paid: …", "this invoice cannot be paid: …"), as sentences with the guard's hint;
    None for any other database error. The doors ask first and refuse in their own words; the guard refuses what
    changed while a door waited on the invoices' locks (a rejection committed meanwhile) or a door skipped."""
    if getattr(exc.orig, "sqlstate", None) != "23514":
        return None
    diag = getattr(exc.orig, "diag", None)
    message = (getattr(diag, "message_primary", None) or "").strip()
    if "cannot be exported or paid" not in message and "cannot be paid" not in message:
        return None
    hint = (getattr(diag, "message_hint", None) or "").strip()
    return " ".join(part for part in (message[0].upper() + message[1:].rstrip(".") + ".", hint) if part)


_LEFT_OUT = {
    "waiting": "waiting for the contractor's acceptance of its self-billed invoice",
    "rejected": "rejected by the contractor",
    "held": "on hold",
    "tax": "waiting for the contractor's tax form",
}


def _nothing_due_message(session: Session, currency: str, due_by) -> str:
    """Why an "all due by" export found nothing to export: nothing due, or what stops what is due (holds, the
    contractor's answer to its self-billed invoice, a missing tax form), counted."""
    due = session.execute(
        select(Invoice.id, Invoice.contractor_id).where(
            Invoice.status == InvoiceStatus.APPROVED.value, Invoice.currency == currency, Invoice.due_date <= due_by
        )
    ).all()
    if not due:
        return f"No authorized payment in {currency} is due by that date; nothing was exported."
    held_invoices, held_contractors = map(set, _live_holds(session))
    answers = acceptance_block_states(session, None)
    untaxed = tax_form_blocks(session, {c for _, c in due})
    counts = {"waiting": 0, "rejected": 0, "held": 0, "tax": 0}
    for invoice_id, contractor_id in due:
        if invoice_id in held_invoices or contractor_id in held_contractors:
            counts["held"] += 1
        elif answers.get(invoice_id) == "rejected":
            counts["rejected"] += 1
        elif invoice_id in answers:
            counts["waiting"] += 1
        elif contractor_id in untaxed:
            counts["tax"] += 1
    reasons = [f"{n} {'is' if n == 1 else 'are'} {_LEFT_OUT[why]}" for why, n in counts.items() if n]
    if not reasons:
        return f"No authorized payment in {currency} is due by that date; nothing was exported."
    return (
        f"{formatting.count(len(due), 'authorized payment')} in {currency} {'is' if len(due) == 1 else 'are'} due by "
        f"that date, but none can be exported now: {'; '.join(reasons)}. Nothing was exported."
    )


def _live_holds(session: Session) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    rows = session.execute(select(Hold.invoice_id, Hold.contractor_id).where(Hold.released_at.is_(None))).all()
    return [r.invoice_id for r in rows if r.invoice_id], [r.contractor_id for r in rows if r.contractor_id]


def _selection_json(selection: Selection, ids: list[uuid.UUID], currency: str) -> dict:
    if ids:
        return {"mode": "selected", "count": len(ids), "currency": currency}
    return {"mode": "due_by", "due_by": selection.due_by, "currency": currency}


def _taken_message(session: Session, ids: list[uuid.UUID], batch_id: uuid.UUID) -> str:
    taken = session.execute(
        select(Invoice.invoice_number, Invoice.status, ApExportBatch.number)
        .outerjoin(ApExportBatch, ApExportBatch.id == Invoice.batch_id)
        .where(
            Invoice.id.in_(ids),
            Invoice.status != InvoiceStatus.APPROVED.value,
            Invoice.batch_id.is_distinct_from(batch_id),  # this export's own moves are rolled back
        )
        .order_by(Invoice.number)
        .limit(5)
    ).all()
    if not taken:
        return "Some of the selected payments changed meanwhile. Reload the queue; nothing was exported."
    named = "; ".join(f"{n} is {_where_it_is(s, b)}" for n, s, b in taken)
    return f"Some selected payments are no longer waiting for export ({named}). Nothing was exported; reload the queue."


def _where_it_is(status: str, batch_number: int | None) -> str:
    if status == InvoiceStatus.EXPORTED.value:
        # Exported in no batch: handed to Stripe (services/stripe_payouts), which pays it or puts it on hold.
        return f"in batch {batch_number}" if batch_number is not None else "being paid through Stripe"
    return InvoiceStatus(status).label.lower()


def _write_file(
    session: Session, org_id: uuid.UUID, batch_id: uuid.UUID, layout: Layout, currency: str
) -> tuple[int, str]:
    """Stream the header and the COPY output through a temporary file (the connection is busy with the
    COPY until it ends), then store it in 1 MiB chunks. Returns the size and sha256."""
    digest = hashlib.sha256()
    cursor = session.connection().connection.driver_connection.cursor()
    with tempfile.SpooledTemporaryFile(max_size=CHUNK) as spool:
        header = layout.header_line()
        digest.update(header)
        spool.write(header)
        # The batch's rows were assigned in this transaction, so the planner's statistics say none have
        # this batch_id and it picks nested loops over every contractor and engagement per row (quadratic:
        # 3.8 s instead of 0.4 s for 100,000 rows). The joined tables are the organization's own, small
        # next to the batch: hash joins are right, whatever the estimate.
        cursor.execute("select set_config('enable_nestloop', 'off', true)")
        with cursor.copy(
            f"copy ({rows_sql(layout, currency)}) to stdout with (format csv)", {"batch": batch_id}
        ) as copy:
            # COPY hands over one row at a time: hashed and spooled a MiB at a time instead (of the Python
            # this costs for 100,000 rows, 35 ms -> 20 ms).
            pending = bytearray()
            for block in copy:
                pending += block
                if len(pending) >= CHUNK:
                    digest.update(pending)
                    spool.write(pending)
                    pending.clear()
            digest.update(pending)
            spool.write(pending)
        cursor.execute("select set_config('enable_nestloop', 'on', true)")
        size = spool.tell()
        spool.seek(0)
        chunk_no = 0
        while piece := spool.read(CHUNK):
            session.execute(
                insert(ApExportChunk.__table__),
                {"org_id": org_id, "batch_id": batch_id, "chunk_no": chunk_no, "data": piece},
            )
            chunk_no += 1
    return size, digest.hexdigest()


def void_batch(session: Session, actor: Actor, batch_id, reason: str) -> ApExportBatch:
    """An admin voids a batch before any of it is paid: its invoices return to approved (ready to export
    again) and the file is kept as it was, marked void. Raises Forbidden, Conflict, InvalidTransition or
    ValidationError for ``reason``."""
    if actor.role != Role.ADMIN:
        raise Forbidden("Only an admin voids an AP export batch.")
    errors: dict[str, str] = {}
    cleaned = clean_text(
        reason, "reason", errors, label="reason for voiding the batch", required=True, max_len=2000, multiline=True
    )
    with unit_of_work(session):
        batch = get_batch(session, batch_id, lock=True)
        if batch.status == "voided":
            raise Conflict(f"Batch {batch.number} was already voided on {batch.voided_at:%d %b %Y}.")
        # Its invoices too: a payment being recorded for one of them finishes first, and is seen below.
        session.execute(select(Invoice.id).where(Invoice.batch_id == batch.id).with_for_update()).all()
        paid = (
            session.execute(
                select(Invoice.invoice_number)
                .where(Invoice.batch_id == batch.id, Invoice.status == InvoiceStatus.PAID.value)
                .order_by(Invoice.number)
                .limit(3)
            )
            .scalars()
            .all()
        )
        if paid:
            raise InvalidTransition(
                f"Batch {batch.number} cannot be voided: {', '.join(paid)} "
                f"{'is' if len(paid) == 1 else 'are'} paid. A batch is voided only before payment."
            )
        if errors:
            raise ValidationError(errors)
        session.execute(
            update(ApExportBatch)
            .where(ApExportBatch.id == batch.id)
            .values(status="voided", voided_by=actor.user_id, voided_at=func.now(), void_reason=cleaned)
        )
        returned = session.execute(
            update(Invoice)
            .where(Invoice.batch_id == batch.id)
            .values(status=InvoiceStatus.APPROVED.value, batch_id=None, exported_at=None)
        ).rowcount
        audit.record(
            session,
            actor,
            "ap_export.voided",
            "ap_export_batch",
            batch.id,
            {"number": batch.number, "reason": cleaned, "invoices_returned": returned},
        )
    return session.get(ApExportBatch, batch.id, populate_existing=True)


def get_batch(session: Session, batch_id, *, lock: bool = False) -> ApExportBatch:
    """The batch, or NotFound (another org's, or a role that may not see batches)."""
    batch = get_visible(session, ApExportBatch, batch_id)
    if lock:
        batch = session.execute(
            select(ApExportBatch)
            .where(ApExportBatch.id == batch.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
    return batch


def download_name(session: Session, batch: ApExportBatch) -> str:
    prefix = session.execute(select(Organization.invoice_prefix).where(Organization.id == batch.org_id)).scalar_one()
    return file_name(prefix, batch.number, Preset(batch.preset), batch.currency)


def read_file(session: Session, batch: ApExportBatch) -> Iterator[bytes]:
    """The stored bytes, a chunk at a time (the same bytes every time)."""
    for chunk_no in range((batch.size_bytes + CHUNK - 1) // CHUNK):
        yield session.execute(
            select(ApExportChunk.data).where(ApExportChunk.batch_id == batch.id, ApExportChunk.chunk_no == chunk_no)
        ).scalar_one()


def describe(batch: ApExportBatch) -> str:
    return (
        f"Batch {batch.number}: {formatting.count(batch.row_count, 'payment')}, "
        f"{format_amount(batch.total_minor or 0, batch.currency)}"
    )
