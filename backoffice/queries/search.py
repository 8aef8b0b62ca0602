"""The header's search: engagements, milestones, invoices and contractors whose words begin with the words typed.

PostgreSQL full-text search with the 'simple' configuration over the expression GIN indexes of revision
0033_search. Each typed word is a prefix ("nort" finds Northwind), all must match, and what is typed never reaches
tsquery syntax: it is cut into runs of letters and digits here, and each run is quoted by quote_literal in the
statement. Under RLS PostgreSQL will not use the (not leakproof) full-text match as an index condition, so the
matching ids come from search_hits() (sql/search.sql), a SECURITY DEFINER door scoped to the caller's organization
and contractor; each statement then reads those rows as the caller, and RLS decides what anyone finds, as on every
page.

A word is searched for only if it has at least MIN_WORD_CHARS letters or digits (one letter would begin a word of
nearly every row), and only letters and decimal digits make words: PostgreSQL's parser keeps nothing of '½', '²' or
'①', so such a word would be an empty query, which search_hits() also refuses. Suggestions wait for
SUGGEST_MIN_CHARS characters in all.

Ordered by ts_rank, then newest first. An invoice whose number is exactly what was typed ("LRG-000123", or its
"123") comes first, found through the unique btrees on (org_id, invoice_number) and (org_id, number). search_hits()
ranks at most 1,000 matches of each kind, so the worst case is bounded: before that cap, a word in nearly every
invoice's text ("site", 110,000 at a large customer's size, bench/search.py) took 1.3 s, all of it ranking every
match; a rarer word ("kitch") 0.2-0.4 s for finance, a contractor's user's search 10-70 ms. At a tenth of that size
the cap took "site" from 270 to 130 ms (medians, a busy machine); the rest did not change.

Contractors are found only by those who may open the contractor's page (web/admin.py: the admin); everyone
else finds engagements, milestones and invoices, as far as RLS lets them read those.
"""

from __future__ import annotations

import re
import unicodedata
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
# The shortest word searched for as a beginning, and how much the suggestions under the header's box wait for.
MIN_WORD_CHARS = 2
SUGGEST_MIN_CHARS = 3
# Who finds contractors: those whose role opens the contractor's page (web/admin.py, roles_required(Role.ADMIN)).
CONTRACTOR_SEARCHERS = frozenset({Role.ADMIN})

# Runs of letters and digits: the way the migration's translate() and the 'simple' parser cut a document
# ("LRG-000123" is lrg and 000123; "ap@northwind.example" is ap, northwind, example).
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def _word_character(ch: str) -> bool:
    """A letter or a decimal digit: what PostgreSQL's parser reads as part of a word. Other numerals ('½', '²', '①'
    are "numbers" to Python's \\w) it drops, and a word of them alone would be an empty query."""
    return unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "Nd"


def words_of(typed: str) -> list[str]:
    """The words searched for in ``typed``: runs of letters and decimal digits, lowercased, of at least
    MIN_WORD_CHARS characters, at most MAX_WORDS of at most MAX_WORD_CHARS each, first occurrence kept. Anything
    else (tsquery operators, quotes, NUL, '½') separates words."""
    found: list[str] = []
    cleaned = "".join(ch if _word_character(ch) else " " for ch in (typed or "")[:MAX_CHARS])
    for word in _WORD.findall(cleaned):
        word = word.lower()[:MAX_WORD_CHARS]
        if len(word) >= MIN_WORD_CHARS and word not in found:
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
    number: bool = False  # an invoice's sequence number was looked up (also with no word to search for)

    @property
    def searched(self) -> bool:
        return bool(self.words) or self.number

    @property
    def found(self) -> int:
        return len(self.engagements) + len(self.milestones) + len(self.invoices) + len(self.contractors)


# The typed words as a prefix tsquery, every word required, each quoted by the database: to_tsquery normalizes each
# quoted word as the documents were ('simple': lowercase, no stemming). search_hits() (sql/search.sql) finds the best
# ids of one kind through its GIN index, of the caller's organization (and contractor); each statement then reads
# those rows as the caller, through RLS, and joins the names to them.
_HITS = """
  with hits as materialized (
    select h.id, h.rank from search_hits(:kind,
      to_tsquery('simple'::regconfig,
                 (select string_agg(quote_literal(w) || ':*', ' & ') from unnest(cast(:words as text[])) w)),
      :n) h
  )"""

_ENGAGEMENTS = f"""{_HITS}
  select e.id, e.title, e.sow_reference, e.status, c.legal_name as contractor_name, e.created_at
    from hits h
    join engagements e on e.org_id = :org and e.id = h.id
    join contractors c on c.org_id = e.org_id and c.id = e.contractor_id
   order by h.rank desc, e.created_at desc, e.id"""

_MILESTONES = f"""{_HITS}
  select m.id, m.title, m.engagement_id, e.title as engagement_title, c.legal_name as contractor_name,
         m.amount_minor, e.currency, m.due_date
    from hits h
    join milestones m on m.org_id = :org and m.id = h.id
    join engagements e on e.org_id = m.org_id and e.id = m.engagement_id
    join contractors c on c.org_id = m.org_id and c.id = m.contractor_id
   order by h.rank desc, m.updated_at desc, m.id"""

# The words' matches, and an exact number through the unique btrees on (org_id, invoice_number) and (org_id, number)
# (equality is leakproof: under RLS the planner uses those indexes with no door).
_INVOICES = f"""{_HITS},
  exact as (
    select i.id from invoices i
     where i.org_id = :org
       and (i.invoice_number = any (cast(:numbers as text[])) or i.number = cast(:number as bigint))
  )
  select i.id, i.invoice_number, i.description, c.legal_name as contractor_name, i.total_minor, i.currency,
         i.due_date, i.id in (select id from exact) as exact
    from invoices i
    left join hits h on h.id = i.id
    join contractors c on c.org_id = i.org_id and c.id = i.contractor_id
   where i.org_id = :org and (i.id in (select id from hits) or i.id in (select id from exact))
   order by exact desc, h.rank desc nulls last, i.authorized_at desc, i.id
   limit :n"""

_CONTRACTORS = f"""{_HITS}
  select c.id, c.legal_name, c.email, c.ap_vendor_id
    from hits h
    join contractors c on c.org_id = :org and c.id = h.id
   order by h.rank desc, c.created_at desc, c.id"""


def _invoice_number(typed: str) -> tuple[list[str], int | None]:
    """What typed may be as an invoice's whole number: the text ("LRG-000123", also in capitals) and the
    sequence number ("123", "000123")."""
    typed = (typed or "")[:MAX_CHARS].strip()
    if not _NUMBER.fullmatch(typed) or len(typed) > 60:
        return [], None
    number = int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= 18 else None
    return sorted({typed, typed.upper()}), number


def search(session: Session, actor: Actor, typed: str, limit: int = 5, min_chars: int = 0) -> SearchResults:
    """Engagements, milestones, invoices and (for those who may open a contractor's page) contractors matching
    every word of ``typed`` as a prefix, at most ``limit`` of each kind. Nothing is searched for text without a
    word of two letters or digits, nor when its words have fewer than ``min_chars`` characters in all; no input
    raises."""
    words = words_of(typed)
    numbers, number = _invoice_number(typed)
    if sum(map(len, words)) < min_chars:
        words = []
    if not words and number is None:  # a lone "7" is still an invoice's sequence number
        return SearchResults(typed=typed, words=[])
    params = {"words": words, "n": limit + 1, "org": actor.org_id}
    more: set[str] = set()

    def rows(kind: str, sql: str, extra: dict | None = None) -> list:
        found = session.execute(text(sql), params | {"kind": kind} | (extra or {})).all()
        if len(found) > limit:
            more.add(kind)
        return found[:limit]

    engagements = [
        EngagementHit(r.id, r.title, r.sow_reference, EngagementStatus(r.status), r.contractor_name, r.created_at)
        for r in (rows("engagements", _ENGAGEMENTS) if words else [])
    ]
    milestones = [MilestoneHit(**r._mapping) for r in (rows("milestones", _MILESTONES) if words else [])]
    invoices = [InvoiceHit(**r._mapping) for r in rows("invoices", _INVOICES, {"numbers": numbers, "number": number})]
    contractors = []
    if words and actor.role in CONTRACTOR_SEARCHERS:
        contractors = [ContractorHit(**r._mapping) for r in rows("contractors", _CONTRACTORS)]
    return SearchResults(
        typed=typed,
        words=words,
        engagements=engagements,
        milestones=milestones,
        invoices=invoices,
        contractors=contractors,
        more=frozenset(more),
        number=number is not None,
    )
