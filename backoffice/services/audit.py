"""The one way to record who did what to which entity. Every service that changes state calls it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import end_read, unit_of_work
from backoffice.domain.audit_chain import ChainBreak, ChainRow, KeptHead, LostHead, first_break, head_line
from backoffice.models import AuditEvent


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append an audit event to ``actor``'s organization in the caller's transaction.

    Who did it is not taken from ``actor``: the database records the transaction's identity (the user
    app.user_id names, with their email; 'background job' for the worker; 'system' for the owner role),
    and sets the chain fields (sql/audit.sql).

    A transaction that names no person yet (the owner role seeding the demo through the services on its
    people's behalf) is given ``actor``'s user first, so that the trail says who. One that names a person
    already (every web request) is left as it is: the request's identity, not ``actor``, is recorded."""
    context = session.info.get("rls")
    if actor.user_id is not None and (context is None or context.user_id is None):
        # (With a person in the session's context, every transaction names them already: no statement.)
        session.execute(_NAME_THE_PERSON, {"user_id": str(actor.user_id)})
    _insert(session, actor.org_id, action, entity_type, entity_id, data)


# Transaction-local, and only where app.user_id is empty: it never replaces a request's identity.
_NAME_THE_PERSON = text(
    "select set_config('app.user_id', :user_id, true) where nullif(current_setting('app.user_id', true), '') is null"
)


def record_system(
    session: Session, org_id: uuid.UUID, action: str, entity_type: str, entity_id=None, data=None
) -> None:
    """An event without a signed-in actor: command-line set-up run by an operator as the owner role,
    which the database records as 'system'."""
    _insert(session, org_id, action, entity_type, entity_id, data)


def _insert(session, org_id, action, entity_type, entity_id, data) -> None:
    # Core insert without RETURNING: a contractor may write an event it is not allowed to read back.
    session.execute(
        insert(AuditEvent.__table__).values(
            id=uuid.uuid4(),
            org_id=org_id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id) if entity_id is not None else None,
            data=data or {},
        )
    )


# The fields each event's hash covers, as domain.audit_chain.ChainRow takes them.
_CHAIN_FIELDS = """
    org_id::text, seq,
    to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at_utc,
    coalesce(actor_user_id::text, '') as actor_user_id, actor_label, action, entity_type,
    coalesce(entity_id, '') as entity_id, data::text as data_text, prev_hash, hash
"""
_CHAIN_ROWS = text(f"select {_CHAIN_FIELDS} from audit_events order by org_id, seq")
_CHAIN_ROWS_THROUGH = text(
    f"select {_CHAIN_FIELDS} from audit_events where org_id = :org and seq <= :through order by seq"
)


def verify_chain(session: Session) -> tuple[int, list[ChainBreak]]:
    """Recompute every visible organization's chain. Returns (events checked, first break per org).

    As the owner role this checks every organization; as the app role, the ones RLS lets it read.
    """
    by_org: dict[str, list[ChainRow]] = {}
    count = 0
    for r in session.execute(_CHAIN_ROWS).mappings():
        by_org.setdefault(r["org_id"], []).append(ChainRow(**r))
        count += 1
    end_read(session)  # read-only: end the transaction rather than leave it open
    breaks = [b for rows in by_org.values() if (b := first_break(rows)) is not None]
    return count, breaks


def first_break_through(session: Session, org_id: uuid.UUID | str, through_seq: int) -> ChainBreak | None:
    """The first broken link of one organization's chain from its first event through event #``through_seq``
    (a document's head, the event that recorded it); None if that stretch links up. Events after it are not
    read. In the caller's transaction, which it leaves open."""
    rows = [
        ChainRow(**r) for r in session.execute(_CHAIN_ROWS_THROUGH, {"org": org_id, "through": through_seq}).mappings()
    ]
    return first_break(rows)


@dataclass(frozen=True)
class ChainHead:
    org_id: str
    seq: int
    hash: str

    @property
    def line(self) -> str:
        """How documents, emails and the command write it down, and `audit verify --heads` reads it."""
        return head_line(self.org_id, self.seq, self.hash)


def chain_heads(session: Session) -> list[ChainHead]:
    """Each visible organization's newest event: keep these to notice a chain cut short at its end."""
    rows = session.execute(
        text("select distinct on (org_id) org_id::text, seq, hash from audit_events order by org_id, seq desc")
    ).all()
    return [ChainHead(r.org_id, r.seq, r.hash) for r in rows]


def current_head(session: Session, org_id: uuid.UUID) -> ChainHead:
    """The organization's chain head now, for a document or an email to carry out of the database. Raises
    LookupError when the session sees none of the organization's events (a context that may not read the
    trail): a document never goes out without its head."""
    row = session.execute(
        text("select seq, hash from audit_events where org_id = :org order by seq desc limit 1"), {"org": org_id}
    ).one_or_none()
    if row is None:
        raise LookupError(f"no audit event of organization {org_id} is visible: the chain head cannot be read")
    return ChainHead(str(org_id), row.seq, row.hash)


@dataclass(frozen=True)
class Tally:
    """How many events of one action (and, for money, one currency) the trail recorded in a span of time."""

    action: str
    currency: str | None  # set on the events whose data carries an amount: authorizations and payments
    events: int
    amount_minor: int  # the sum of their net_minor (a payment authorization) or amount_minor (a payment)


# No index leads with occurred_at, but within one organization a later seq has a later occurred_at (the
# insert trigger, sql/audit.sql, takes clock_timestamp() after the organization's advisory lock, which the
# previous insert held until its commit; only the server's clock stepping back breaks that). So the newest
# event before the span is found walking back from the head over the (org_id, seq) key, and the span is a
# range of that key: the daily digest reads yesterday's and today's events, not the organization's whole
# trail. Two statements, not a subquery: given the boundary as a value the planner takes the key range;
# given a subquery it cannot estimate the range and scans. Measured as the worker, one organization of
# 100,000 events with 8 in the day: 1.6 ms for the two, 43 ms for the subquery form and for a plain
# occurred_at filter (both sequential scans).
_LAST_BEFORE = text(
    "select seq from audit_events where org_id = :org and occurred_at < :start order by seq desc limit 1"
)
_RECORDED_AFTER = text(
    """
    select action, data ->> 'currency' as currency, count(*) as events,
           coalesce(sum(coalesce((data ->> 'net_minor')::bigint, (data ->> 'amount_minor')::bigint))
                    filter (where data ? 'currency'), 0) as amount_minor
      from audit_events
     where org_id = :org and seq > :after and occurred_at >= :start and occurred_at < :end
     group by action, data ->> 'currency'
     order by action, currency
    """
)


def recorded_between(session: Session, org_id: uuid.UUID, start: datetime, end: datetime) -> list[Tally]:
    """What the organization's trail recorded from ``start`` up to ``end`` (timezone-aware), per action and
    currency. Empty when nothing was recorded."""
    after = session.execute(_LAST_BEFORE, {"org": org_id, "start": start}).scalar_one_or_none() or 0
    rows = session.execute(_RECORDED_AFTER, {"org": org_id, "after": after, "start": start, "end": end}).all()
    return [Tally(r.action, r.currency, r.events, int(r.amount_minor)) for r in rows]


def heads_in_documents(session: Session) -> list[KeptHead]:
    """The chain head each visible document carried when it was issued (documents from before heads were
    kept carry none)."""
    rows = session.execute(
        text(
            "select org_id::text, audit_head_seq as seq, audit_head_hash as hash, filename, id::text"
            "  from documents where audit_head_seq is not null order by org_id, issued_at, id"
        )
    ).all()
    end_read(session)
    return [KeptHead(r.org_id, r.seq, r.hash, f"document {r.filename} ({r.id})") for r in rows]


_LOST_HEADS = text(
    """
    select h.i, e.hash as now_hash, (select max(m.seq) from audit_events m where m.org_id = h.org_id) as last_seq
      from unnest(cast(:orgs as uuid[]), cast(:seqs as bigint[]), cast(:hashes as text[]))
           with ordinality as h(org_id, seq, hash, i)
      left join audit_events e on e.org_id = h.org_id and e.seq = h.seq
     where e.hash is distinct from h.hash
     order by h.i
    """
)


def lost_heads(session: Session, heads: Sequence[KeptHead]) -> list[LostHead]:
    """The kept heads the trail no longer holds (no event at their seq, or one with another hash), in the
    order given. As the owner role this sees every organization; as the app role an organization it may
    not read has lost every head."""
    if not heads:
        return []
    rows = session.execute(
        _LOST_HEADS,
        {"orgs": [h.org_id for h in heads], "seqs": [h.seq for h in heads], "hashes": [h.hash for h in heads]},
    ).all()
    end_read(session)
    lost = []
    for r in rows:
        head = heads[r.i - 1]
        if r.now_hash is not None:
            reason = f"event #{head.seq} now has another hash ({r.now_hash}): the trail was rewritten"
        elif r.last_seq is None:
            reason = "the organization has no events left"
        elif r.last_seq > head.seq:
            reason = f"event #{head.seq} is gone"
        else:
            reason = f"the trail now ends at event #{r.last_seq}: the events after it are gone"
        lost.append(LostHead(head, reason))
    return lost


@dataclass(frozen=True)
class UnrecordedDocument:
    org_id: str
    document: str  # its filename and id
    sha256: str


# The event that recorded document ``d``'s issue with its sha256, written in the same transaction: an invoice's
# self-billed invoice, e-invoice and credit note on the invoice (document.issued; its PDF before revision 0031:
# document.receipt_issued), a remittance advice's on its payment run. One rule for `audit verify --from-documents`
# (unrecorded_documents) and `backoffice verify` (document_event).
_RECORDS_DOCUMENT = """
    e.org_id = d.org_id
    and e.entity_type = case d.kind when 'remittance_advice' then 'payment_run' else 'invoice' end
    and e.entity_id = case d.kind when 'remittance_advice' then d.run_id else d.invoice_id end::text
    and e.action in (case d.kind when 'remittance_advice' then 'document.remittance_advice_issued'
                                 else 'document.issued' end,
                     case d.kind when 'self_billed_invoice' then 'document.receipt_issued' end)
    and e.data ->> 'document_id' = d.id::text and e.data ->> 'sha256' = d.sha256
"""


def unrecorded_documents(session: Session) -> list[UnrecordedDocument]:
    """Visible documents whose issue event (``_RECORDS_DOCUMENT``) the trail no longer holds: a trail cut back to just
    before a document was issued still holds the head the document carries, but not the event that recorded it."""
    rows = session.execute(
        text(
            f"""
            select d.org_id::text, d.filename, d.id::text, d.sha256
              from documents d
             where not exists (select 1 from audit_events e where {_RECORDS_DOCUMENT})
             order by d.org_id, d.issued_at, d.id
            """
        )
    ).all()
    end_read(session)
    return [UnrecordedDocument(r.org_id, f"{r.filename} ({r.id})", r.sha256) for r in rows]


def document_event(session: Session, org_id: uuid.UUID | str, document_id: uuid.UUID | str) -> int | None:
    """The seq of the event that recorded the document's issue with its sha256 (the rule unrecorded_documents
    checks), or None when the trail no longer holds it. In the caller's transaction, which it leaves open."""
    return session.execute(
        text(
            f"""
            select min(e.seq) from documents d join audit_events e on {_RECORDS_DOCUMENT}
             where d.org_id = :org and d.id = :document
            """
        ),
        {"org": org_id, "document": document_id},
    ).scalar_one()


@dataclass(frozen=True)
class TrailCheck:
    checked: int  # events whose hash was recomputed
    breaks: list[ChainBreak]  # the first broken link of each organization
    heads: list[ChainHead]  # each visible organization's head now: keep them for a later check
    kept: int  # heads kept elsewhere that were looked for
    lost: list[LostHead]  # of those, the ones the trail no longer holds
    unrecorded: list[UnrecordedDocument]

    @property
    def intact(self) -> bool:
        return not (self.breaks or self.lost or self.unrecorded)


def check_trail(session: Session, kept: Sequence[KeptHead] = (), *, documents: bool = False) -> TrailCheck:
    """Verify every visible organization's chain, and that it still holds the ``kept`` heads and, with
    ``documents``, the head each stored document carried and each document's own event: a trail cut short
    at its newest end links up, only a head kept from before shows it. Read-only."""
    checked, breaks = verify_chain(session)
    heads = chain_heads(session)
    end_read(session)
    kept = list(kept)
    unrecorded = []
    if documents:
        kept += heads_in_documents(session)
        unrecorded = unrecorded_documents(session)
    return TrailCheck(checked, breaks, heads, len(kept), lost_heads(session, kept), unrecorded)


CHAIN_CHECKED = "audit.chain_checked"


def record_check(session: Session, actor: Actor, check: TrailCheck) -> None:
    """Record that ``actor`` checked the trail and what the check found, so the admin's home can show the last
    result without reading the whole chain again (a check reads every event). Filed under the organization as
    entity ('audit_trail', its id), which the (org_id, entity_type, entity_id) index finds directly. Commits."""
    with unit_of_work(session):
        record(
            session,
            actor,
            CHAIN_CHECKED,
            "audit_trail",
            str(actor.org_id),
            {"intact": check.intact, "events": check.checked},
        )
