"""The 1099-NEC year end (issue 18, item 6): finance exports a calendar year's 1099-NEC fields for an e-filing
service, which locks the year; the lock keeps the file as written (bytes and sha256: it re-downloads byte-identical)
and each contractor's figure, so that a payment recorded or reversed later shows as a change against what was filed.
Exporting again takes reopening the year, with a reason. Payments are never refused because a year is locked: a
Stripe transfer that happened is always recorded.

Only US persons (a W-9 on file, or no form yet) paid at least the year's threshold are in the file; a W-8 means no
1099. The TIN is decrypted here, for the file only (finance and admins read tax_tins: sql/tax.sql)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.ap_export import safe_cell
from backoffice.domain.roles import FINANCE_ROLES
from backoffice.domain.tax import format_tin, nec_threshold
from backoffice.errors import Conflict, Forbidden, NotFound, ValidationError
from backoffice.models import Organization, TaxYearFiling
from backoffice.queries.tax import YearEndRow, year_totals
from backoffice.services import audit
from backoffice.services.tin_cipher import decrypt_tin
from backoffice.services.validation import clean_text

HEADER = (
    "Tax year",
    "Payer name",
    "Recipient name",
    "Recipient business name",
    "Recipient TIN type",
    "Recipient TIN",
    "Recipient address line 1",
    "Recipient address line 2",
    "Recipient city",
    "Recipient state",
    "Recipient ZIP",
    "Box 1 nonemployee compensation",
    "Contractor ID",
)

_RECIPIENTS = text(
    """
    select p.contractor_id, p.name, p.business_name, p.address_line1, p.address_line2, p.city, p.region,
           p.postal_code, t.tin_type, t.ciphertext
      from tax_profiles p
      left join tax_tins t on t.org_id = p.org_id and t.id = p.tin_id
     where p.contractor_id = any(cast(:ids as uuid[])) and p.kind = 'w9'
    """
)


def _require_finance(actor: Actor) -> None:
    if actor.role not in FINANCE_ROLES:
        raise Forbidden("Only finance and admins work the 1099 year end.")


def clean_year(raw) -> int:
    """A tax year from a form or a URL; ValidationError in words otherwise."""
    try:
        year = int(str(raw).strip())
        nec_threshold(year)
    except ValueError:
        raise ValidationError({"year": "Choose a calendar year from 2020 on."}) from None
    if year > 2200:
        raise ValidationError({"year": "Choose a calendar year from 2020 on."})
    return year


def render_file(org_name: str, year: int, rows: list[YearEndRow], recipients: dict, *, key: str, org_id) -> bytes:
    """The CSV an e-filing service imports: one row per reportable contractor, amounts in dollars with two decimals,
    every text cell formula-safe (domain.ap_export.safe_cell), UTF-8 with a byte order mark so Excel reads
    accented names right, CRLF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        r = recipients.get(row.contractor_id)
        tin = ""
        if r is not None and r.ciphertext is not None:
            tin = format_tin(decrypt_tin(key, org_id, r.ciphertext), r.tin_type)
        dollars, cents = divmod(row.total_minor, 100)
        writer.writerow(
            [
                str(year),
                safe_cell(org_name),
                safe_cell(r.name if r else row.legal_name),
                safe_cell(r.business_name if r else ""),
                (r.tin_type or "").upper() if r else "",
                tin,
                safe_cell(r.address_line1 if r else ""),
                safe_cell(r.address_line2 if r else ""),
                safe_cell(r.city if r else ""),
                safe_cell(r.region if r else ""),
                safe_cell(r.postal_code if r else ""),
                f"{dollars}.{cents:02d}",
                str(row.contractor_id),
            ]
        )
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def export_year(session: Session, actor: Actor, year, *, key: str) -> TaxYearFiling:
    """Write the year's 1099-NEC file and lock the year with it and its totals. Conflict when the year is locked
    already (reopen it first); ValidationError for a year before 2020."""
    _require_finance(actor)
    year = clean_year(year)
    with unit_of_work(session):
        org = session.execute(select(Organization).where(Organization.id == actor.org_id)).scalar_one()
        if _locked(session, year) is not None:
            raise Conflict(f"{year} is locked: it was exported already. Reopen it, with a reason, to export again.")
        rows = year_totals(session, year)
        reportable = [r for r in rows if r.reportable]
        recipients = {
            r.contractor_id: r
            for r in session.execute(_RECIPIENTS, {"ids": [r.contractor_id for r in reportable]}).all()
        }
        content = render_file(org.name, year, reportable, recipients, key=key, org_id=org.id)
        digest = hashlib.sha256(content).hexdigest()
        filing_id = uuid.uuid4()
        totals = {str(r.contractor_id): r.total_minor for r in rows if not r.foreign}
        try:
            with session.begin_nested():
                session.execute(
                    insert(TaxYearFiling).values(
                        org_id=actor.org_id,
                        id=filing_id,
                        year=year,
                        filename=f"1099-NEC-{year}-{org.invoice_prefix}.csv",
                        content=content,
                        size_bytes=len(content),
                        sha256=digest,
                        threshold_minor=nec_threshold(year),
                        row_count=len(reportable),
                        total_minor=sum(r.total_minor for r in reportable),
                        totals=totals,
                        exported_by=actor.user_id,
                    )
                )
        except IntegrityError:
            # Two exports at the same moment: the year's lock (a unique index) let one through.
            raise Conflict(f"{year} was exported a moment ago by someone else; download that file.") from None
        audit.record(
            session,
            actor,
            "tax_year.exported",
            "tax_year_filing",
            filing_id,
            {
                "year": year,
                "sha256": digest,
                "recipients": len(reportable),
                "total_minor": sum(r.total_minor for r in reportable),
                "currency": "USD",
                "missing_w9": [str(r.contractor_id) for r in reportable if r.problem],
            },
        )
    return session.get(TaxYearFiling, (actor.org_id, filing_id))


def reopen_year(session: Session, actor: Actor, year, reason: str) -> TaxYearFiling:
    """Unlock the year so it can be exported again; the filing stays, with who reopened it, when and why."""
    _require_finance(actor)
    year = clean_year(year)
    errors: dict[str, str] = {}
    reason = clean_text(reason, "reason", errors, label="reason to reopen the year", required=True, max_len=1000)
    if errors:
        raise ValidationError(errors)
    with unit_of_work(session):
        filing = _locked(session, year, lock=True)
        if filing is None:
            raise Conflict(f"{year} is not locked; there is nothing to reopen.")
        session.execute(
            update(TaxYearFiling)
            .where(TaxYearFiling.org_id == filing.org_id, TaxYearFiling.id == filing.id)
            .values(reopened_by=actor.user_id, reopened_at=text("now()"), reopen_reason=reason)
        )
        audit.record(
            session,
            actor,
            "tax_year.reopened",
            "tax_year_filing",
            filing.id,
            {"year": year, "reason": reason, "sha256": filing.sha256},
        )
    session.refresh(filing)
    return filing


def filing_file(session: Session, actor: Actor, filing_id) -> TaxYearFiling:
    """A filing's stored file (as exported, byte for byte). NotFound for another's or a malformed id."""
    _require_finance(actor)
    try:
        row_id = uuid.UUID(str(filing_id))
    except ValueError:
        raise NotFound() from None
    filing = session.execute(select(TaxYearFiling).where(TaxYearFiling.id == row_id)).scalar_one_or_none()
    if filing is None:
        raise NotFound()
    return filing


def _locked(session: Session, year: int, *, lock: bool = False) -> TaxYearFiling | None:
    query = select(TaxYearFiling).where(TaxYearFiling.year == year, TaxYearFiling.reopened_at.is_(None))
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()
