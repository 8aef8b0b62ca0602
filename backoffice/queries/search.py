"""The header's search: engagements, milestones, invoices and contractors whose words begin with the words typed.

PostgreSQL full-text search with the 'simple' configuration over the expression GIN indexes of revision
0033_search; each statement below spells its index's expression exactly as the migration does, or the planner
cannot use it (tests/integration/test_search_rls.py checks it does). Each typed word is a prefix ("nort" finds
Northwind), all must match, and what is typed never reaches tsquery syntax: it is cut into runs of letters and
digits here, and each run is quoted by quote_literal in the statement. RLS decides what anyone finds, as on every
page; the tenant lexemes ANDed into the query only let GIN skip other organizations' (and, for a contractor's
user, other contractors') rows instead of fetching them for RLS to drop.

Ordered by ts_rank, then newest first. An invoice whose number is exactly what was typed ("LRG-000123", or its
"123") comes first, found through the unique btrees on (org_id, invoice_number) and (org_id, number).

Contractors are found only by those who may open the contractor's page (web/admin.py: the admin); everyone
else finds engagements, milestones and invoices, as far as RLS lets them read those.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.domain.engagements import EngagementStatus
from backoffice.domain.roles import Role

# What is read of the typed text: enough for any name or number, never a 1,000-character paste.
MAX_CHARS = 200
MAX_WORDS = 8
MAX_WORD_CHARS = 40
# Who finds contractors: those whose role opens the contractor's page (web/admin.py, roles_required(Role.ADMIN)).
CONTRACTOR_SEARCHERS = frozenset({Role.ADMIN})

# Runs of letters and digits: the way the migration's translate() and the 'simple' parser cut a document
# ("LRG-000123" is lrg and 000123; "ap@northwind.example" is ap, northwind, example).
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def words_of(typed: str) -> list[str]:
    """The words searched for in ``typed``: runs of letters and digits, lowercased, at most MAX_WORDS of at most
    MAX_WORD_CHARS each, first occurrence kept. Anything else (tsquery operators, quotes, NUL) separates words."""
    found: list[str] = []
    for word in _WORD.findall((typed or "")[:MAX_CHARS]):
        word = word.lower()[:MAX_WORD_CHARS]
        if word not in found:
            found.append(word)
        if len(found) == MAX_WORDS:
            break
    return found


@dataclass(frozen=True)
class EngagementHit:
    id: uuid.UUID
    title: str
    sow_reference: str | None
    status: EngagementStatus
    contractor_name: str
    created_at: datetime


@dataclass(frozen=True)
class MilestoneHit:
    id: uuid.UUID
    title: str
    engagement_id: uuid.UUID
    engagement_title: str
    contractor_name: str
    amount_minor: int
    currency: str
    due_date: date


@dataclass(frozen=True)
class InvoiceHit:
    id: uuid.UUID
    invoice_number: str
    description: str
    contractor_name: str
    total_minor: int
    currency: str
    due_date: date
    exact: bool  # its number is what was typed


@dataclass(frozen=True)
class ContractorHit:
    id: uuid.UUID
    legal_name: str
    email: str
    ap_vendor_id: str | None


@dataclass(frozen=True)
class SearchResults:
    """What was searched for and what was found, by kind, each at most ``limit`` rows; ``more`` names the kinds
    that had more than that (the page says to add a word)."""

    typed: str
    words: list[str]
    engagements: list[EngagementHit] = field(default_factory=list)
    milestones: list[MilestoneHit] = field(default_factory=list)
    invoices: list[InvoiceHit] = field(default_factory=list)
    contractors: list[ContractorHit] = field(default_factory=list)
    more: frozenset[str] = frozenset()

    @property
    def searched(self) -> bool:
        return bool(self.words)

    @property
    def found(self) -> int:
        return len(self.engagements) + len(self.milestones) + len(self.invoices) + len(self.contractors)


# The typed words as a prefix tsquery, every word required, each quoted by the database; ANDed with the caller's
# tenant lexemes. to_tsquery normalizes each quoted word as the documents were ('simple': lowercase, no stemming).
_QUERY = """
  with q as (
    select to_tsquery('simple'::regconfig,
                      (select string_agg(quote_literal(w) || ':*', ' & ') from unnest(cast(:words as text[])) w))
           && cast(:tags as tsquery) as q
  )"""

# The indexed expressions of migrations/versions/0033_search.py, character for character in meaning.
_TAGS_OC = (
    "array_to_tsvector(array['~o' || replace({t}.org_id::text, '-', ''),"
    " '~c' || replace({t}.contractor_id::text, '-', '')])"
)
_ENGAGEMENT_VECTOR = (
    "(to_tsvector('simple'::regconfig, translate(e.title || ' ' || coalesce(e.sow_reference, ''), '-@./_', '     '))"
    " || " + _TAGS_OC.format(t="e") + ")"
)
_MILESTONE_VECTOR = (
    "(to_tsvector('simple'::regconfig, translate(m.title || ' ' || m.deliverable, '-@./_', '     '))"
    " || " + _TAGS_OC.format(t="m") + ")"
)
_INVOICE_VECTOR = (
    "(to_tsvector('simple'::regconfig, translate(i.invoice_number || ' ' || i.description, '-@./_', '     '))"
    " || " + _TAGS_OC.format(t="i") + ")"
)
_CONTRACTOR_VECTOR = (
    "(to_tsvector('simple'::regconfig,"
    " translate(c.legal_name || ' ' || c.email || ' ' || coalesce(c.ap_vendor_id, ''), '-@./_', '     '))"
    " || array_to_tsvector(array['~o' || replace(c.org_id::text, '-', '')]))"
)

_ENGAGEMENTS = f"""{_QUERY}
  select e.id, e.title, e.sow_reference, e.status, c.legal_name as contractor_name, e.created_at
    from q, engagements e
    join contractors c on c.org_id = e.org_id and c.id = e.contractor_id
   where {_ENGAGEMENT_VECTOR} @@ q.q
   order by ts_rank({_ENGAGEMENT_VECTOR}, q.q) desc, e.created_at desc, e.id
   limit :n"""

_MILESTONES = f"""{_QUERY}
  select m.id, m.title, m.engagement_id, e.title as engagement_title, c.legal_name as contractor_name,
         m.amount_minor, e.currency, m.due_date
    from q, milestones m
    join engagements e on e.org_id = m.org_id and e.id = m.engagement_id
    join contractors c on c.org_id = m.org_id and c.id = m.contractor_id
   where {_MILESTONE_VECTOR} @@ q.q
   order by ts_rank({_MILESTONE_VECTOR}, q.q) desc, m.updated_at desc, m.id
   limit :n"""

# The words through GIN; an exact number also through the unique btrees (org_id scoped, as the indexes are).
_EXACT = "coalesce(i.invoice_number = any (cast(:numbers as text[])) or i.number = cast(:number as bigint), false)"
_INVOICES = f"""{_QUERY}
  select i.id, i.invoice_number, i.description, c.legal_name as contractor_name, i.total_minor, i.currency,
         i.due_date, {{exact}} as exact
    from q, invoices i
    join contractors c on c.org_id = i.org_id and c.id = i.contractor_id
   where {_INVOICE_VECTOR} @@ q.q{{or_exact}}
   order by exact desc, ts_rank({_INVOICE_VECTOR}, q.q) desc, i.authorized_at desc, i.id
   limit :n"""
_INVOICES_BY_WORDS = _INVOICES.format(exact="false", or_exact="")
_INVOICES_BY_NUMBER = _INVOICES.format(
    exact=_EXACT,
    or_exact="""
      or (i.org_id = :org and i.invoice_number = any (cast(:numbers as text[])))
      or (i.org_id = :org and i.number = cast(:number as bigint))""",
)

_CONTRACTORS = f"""{_QUERY}
  select c.id, c.legal_name, c.email, c.ap_vendor_id
    from q, contractors c
   where {_CONTRACTOR_VECTOR} @@ q.q
   order by ts_rank({_CONTRACTOR_VECTOR}, q.q) desc, c.created_at desc, c.id
   limit :n"""


def _tags(actor: Actor, *, with_contractor: bool = True) -> str:
    """The caller's tenant lexemes as tsquery text (hex digits only: nothing typed is in it)."""
    tags = [f"'~o{actor.org_id.hex}'"]
    if with_contractor and actor.contractor_id is not None:
        tags.append(f"'~c{actor.contractor_id.hex}'")
    return " & ".join(tags)


def _invoice_number(typed: str) -> tuple[list[str], int | None]:
    """What typed may be as an invoice's whole number: the text ("LRG-000123", also in capitals) and the
    sequence number ("123", "000123")."""
    typed = (typed or "")[:MAX_CHARS].strip()
    if not _NUMBER.fullmatch(typed) or len(typed) > 60:
        return [], None
    number = int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= 18 else None
    return sorted({typed, typed.upper()}), number


def search(session: Session, actor: Actor, typed: str, limit: int = 5) -> SearchResults:
    """Engagements, milestones, invoices and (for those who may open a contractor's page) contractors matching
    every word of ``typed`` as a prefix, at most ``limit`` of each kind. Nothing is searched for text without a
    letter or digit; no input raises."""
    words = words_of(typed)
    if not words:
        return SearchResults(typed=typed, words=[])
    numbers, number = _invoice_number(typed)
    params = {"words": words, "tags": _tags(actor), "n": limit + 1, "org": actor.org_id}
    more: set[str] = set()

    def rows(kind: str, sql: str, extra: dict | None = None) -> list:
        found = session.execute(text(sql), params | (extra or {})).all()
        if len(found) > limit:
            more.add(kind)
        return found[:limit]

    engagements = [
        EngagementHit(r.id, r.title, r.sow_reference, EngagementStatus(r.status), r.contractor_name, r.created_at)
        for r in rows("engagements", _ENGAGEMENTS)
    ]
    milestones = [MilestoneHit(**r._mapping) for r in rows("milestones", _MILESTONES)]
    invoices = [
        InvoiceHit(**r._mapping)
        for r in rows(
            "invoices", _INVOICES_BY_NUMBER if numbers else _INVOICES_BY_WORDS, {"numbers": numbers, "number": number}
        )
    ]
    contractors = []
    if actor.role in CONTRACTOR_SEARCHERS:
        contractors = [
            ContractorHit(**r._mapping)
            for r in rows("contractors", _CONTRACTORS, {"tags": _tags(actor, with_contractor=False)})
        ]
    return SearchResults(
        typed=typed,
        words=words,
        engagements=engagements,
        milestones=milestones,
        invoices=invoices,
        contractors=contractors,
        more=frozenset(more),
    )
