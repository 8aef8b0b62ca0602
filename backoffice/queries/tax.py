"""Tax forms on the read side (issue 18, items 5 and 6): whether contractors' forms are complete (for any member,
through the database's tax_form_problems(), which says nothing else of a form), a contractor's own form, and the
1099-NEC figures of a calendar year."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backoffice.db import end_read
from backoffice.domain.tax import (
    NEC_CURRENCY,
    FormKind,
    ProfileFacts,
    blocked_words,
    is_reportable,
    nec_threshold,
    tax_form_problem,
)
from backoffice.models import TaxProfile, TaxYearFiling

_PROBLEMS = text(
    "select contractor_id, required, problem from tax_form_problems(cast(:ids as uuid[])) order by contractor_id"
)


@dataclass(frozen=True)
class FormState:
    """What any member may know of a contractor's tax form: whether the organization requires one, and what is
    missing (None: complete)."""

    required: bool
    problem: str | None

    @property
    def on_file(self) -> bool:
        return self.problem is None

    @property
    def blocks(self) -> str | None:
        """Why the contractor is not paid, when it is not."""
        return blocked_words(self.problem) if self.required and self.problem else None


def _ids(contractor_ids: Iterable) -> list[uuid.UUID]:
    return sorted({c if isinstance(c, uuid.UUID) else uuid.UUID(str(c)) for c in contractor_ids})


def tax_form_states(session: Session, contractor_ids: Iterable) -> dict[uuid.UUID, FormState]:
    """Each named contractor's form state, for those of the current organization the caller sees (staff: any,
    a project owner included; a contractor's user: its own)."""
    ids = _ids(contractor_ids)
    if not ids:
        return {}
    rows = session.execute(_PROBLEMS, {"ids": ids}).all()
    return {r.contractor_id: FormState(r.required, r.problem) for r in rows}


def tax_form_blocks(session: Session, contractor_ids: Iterable) -> dict[uuid.UUID, str]:
    """For an organization that requires a tax form: the contractors among ``contractor_ids`` that may not be
    exported or paid, with the words why ("Tax form missing: no W-9 on file"). ``{}`` when it requires none.
    Works for any staff member who sees the invoices (project owners read no tax profile: the database answers
    this one question for them)."""
    return {c: state.blocks for c, state in tax_form_states(session, contractor_ids).items() if state.blocks}


def profile_of(session: Session, contractor_id: uuid.UUID) -> TaxProfile | None:
    """The contractor's tax form, as RLS lets the caller read it (finance, admins, the contractor's own users)."""
    return session.execute(select(TaxProfile).where(TaxProfile.contractor_id == contractor_id)).scalar_one_or_none()


def facts_of(profile: TaxProfile | None) -> ProfileFacts:
    if profile is None:
        return ProfileFacts(kind=None)
    return ProfileFacts(
        kind=profile.kind,
        name=profile.name,
        classification=profile.classification,
        has_tin=profile.tin_id is not None,
        address_line1=profile.address_line1,
        city=profile.city,
        region=profile.region,
        postal_code=profile.postal_code,
        country=profile.country,
    )


# --- the 1099-NEC year end ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YearEndRow:
    contractor_id: uuid.UUID
    legal_name: str
    total_minor: int  # every standing payment of the year in USD, by payment date
    payments: int
    kind: FormKind | None
    problem: str | None  # what the form lacks (None: complete)
    tin_last4: str | None
    reportable: bool  # a US person (a W-9, or no form yet) paid at least the year's threshold
    filed_minor: int | None = None  # the figure in the year's filing, while it is locked

    @property
    def foreign(self) -> bool:
        return self.kind is not None and not self.kind.us_person

    @property
    def changed_since_filed(self) -> bool:
        return self.filed_minor is not None and self.filed_minor != self.total_minor


@dataclass(frozen=True)
class YearEnd:
    year: int
    threshold_minor: int
    rows: list[YearEndRow]
    filing: TaxYearFiling | None  # the lock: the year's filing that is not reopened
    filings: list[TaxYearFiling]  # every export of the year, newest first

    @property
    def reportable(self) -> list[YearEndRow]:
        return [r for r in self.rows if r.reportable]

    @property
    def flagged(self) -> list[YearEndRow]:
        """Reportable contractors whose W-9 is missing or incomplete."""
        return [r for r in self.reportable if r.problem]

    @property
    def changed(self) -> list[YearEndRow]:
        return [r for r in self.rows if r.changed_since_filed]

    @property
    def total_reportable_minor(self) -> int:
        return sum(r.total_minor for r in self.reportable)


_YEAR_TOTALS = text(
    """
    select c.id as contractor_id, c.legal_name, t.total_minor, t.payments,
           p.kind, p.name, p.classification, p.tin_id is not null as has_tin, p.tin_last4, p.address_line1, p.city,
           p.region, p.postal_code, p.country
      from (select contractor_id, sum(amount_minor)::bigint as total_minor, count(*) as payments
              from payments
             where paid_at >= :start and paid_at < :end and currency = :currency and reversed_at is null
             group by contractor_id) t
      join contractors c on c.id = t.contractor_id
      left join tax_profiles p on p.org_id = c.org_id and p.contractor_id = c.id
     order by lower(c.legal_name), c.id
    """
)


def year_totals(session: Session, year: int) -> list[YearEndRow]:
    """Each contractor paid in ``year`` (calendar year, by payment date) in US dollars, through any way of paying
    (manual, AP file, remittance, Stripe: every row of payments), a reversed payment not counted. Finance and
    admins (the policies of payments and tax_profiles)."""
    nec_threshold(year)  # ValueError before 2020, before anything is read
    rows = session.execute(
        _YEAR_TOTALS, {"start": date(year, 1, 1), "end": date(year + 1, 1, 1), "currency": NEC_CURRENCY}
    ).all()
    out = []
    for r in rows:
        facts = ProfileFacts(
            kind=r.kind,
            name=r.name or "",
            classification=r.classification or "",
            has_tin=bool(r.has_tin),
            address_line1=r.address_line1 or "",
            city=r.city or "",
            region=r.region or "",
            postal_code=r.postal_code or "",
            country=r.country or "",
        )
        kind = FormKind(r.kind) if r.kind else None
        us_person = kind is None or kind.us_person
        out.append(
            YearEndRow(
                contractor_id=r.contractor_id,
                legal_name=r.legal_name,
                total_minor=int(r.total_minor),
                payments=int(r.payments),
                kind=kind,
                problem=tax_form_problem(facts),
                tin_last4=r.tin_last4,
                reportable=us_person and is_reportable(int(r.total_minor), year),
            )
        )
    return out


def filings_of(session: Session, year: int) -> list[TaxYearFiling]:
    return list(
        session.execute(
            select(TaxYearFiling).where(TaxYearFiling.year == year).order_by(TaxYearFiling.exported_at.desc())
        ).scalars()
    )


def year_end(session: Session, year: int) -> YearEnd:
    """The year-end page: the year's figures now and, while the year is locked, the filed figure of each."""
    rows = year_totals(session, year)
    filings = filings_of(session, year)
    filing = next((f for f in filings if f.reopened_at is None), None)
    if filing is not None:
        filed = {uuid.UUID(k): int(v) for k, v in filing.totals.items()}
        seen = {r.contractor_id for r in rows}
        rows = [_with_filed(r, filed.get(r.contractor_id, 0)) for r in rows]
        # A contractor in the filing with no standing payment now (every one reversed since): a figure that changed.
        gone = [cid for cid, amount in filed.items() if cid not in seen and amount]
        if gone:
            names = dict(session.execute(_NAMES, {"ids": gone}).all())
            rows += [YearEndRow(c, names.get(c, ""), 0, 0, None, None, None, False, filed[c]) for c in gone]
    end_read(session)
    return YearEnd(year, nec_threshold(year), rows, filing, filings)


_NAMES = text("select id, legal_name from contractors where id = any(cast(:ids as uuid[]))")


def _with_filed(row: YearEndRow, filed: int) -> YearEndRow:
    return YearEndRow(**{**row.__dict__, "filed_minor": filed})
