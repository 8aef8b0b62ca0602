"""The one way to record who did what to which entity. Every service that changes state calls it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import end_read
from backoffice.domain.audit_chain import ChainBreak, ChainRow, first_break
from backoffice.models import AuditEvent

SYSTEM_LABEL = "system (command line)"


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append an audit event in the caller's transaction. Chain fields are set by the database."""
    _insert(session, actor.org_id, actor.user_id, actor.label, action, entity_type, entity_id, data)


def record_system(
    session: Session, org_id: uuid.UUID, action: str, entity_type: str, entity_id=None, data=None
) -> None:
    """An event without a signed-in actor: command-line set-up run by an operator as the owner role."""
    _insert(session, org_id, None, SYSTEM_LABEL, action, entity_type, entity_id, data)


def _insert(session, org_id, actor_user_id, actor_label, action, entity_type, entity_id, data) -> None:
    # Core insert without RETURNING: a contractor may write an event it is not allowed to read back.
    session.execute(
        insert(AuditEvent.__table__).values(
            id=uuid.uuid4(),
            org_id=org_id,
            actor_user_id=actor_user_id,
            actor_label=actor_label,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id) if entity_id is not None else None,
            data=data or {},
        )
    )


_CHAIN_ROWS = text(
    """
    select org_id::text, seq,
           to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at_utc,
           coalesce(actor_user_id::text, '') as actor_user_id, actor_label, action, entity_type,
           coalesce(entity_id, '') as entity_id, data::text as data_text, prev_hash, hash
      from audit_events
     order by org_id, seq
    """
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


@dataclass(frozen=True)
class ChainHead:
    org_id: str
    seq: int
    hash: str


def chain_heads(session: Session) -> list[ChainHead]:
    """Each visible organization's newest event: keep these to notice a chain cut short at its end."""
    rows = session.execute(
        text("select distinct on (org_id) org_id::text, seq, hash from audit_events order by org_id, seq desc")
    ).all()
    return [ChainHead(r.org_id, r.seq, r.hash) for r in rows]
