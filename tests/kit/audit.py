"""The audit trail as the owner role sees it, and cutting its newest events the way someone holding the
server's keys could: as a superuser, with the append-only trigger switched off. Every cut is put back
exactly (chain fields included) when the ``with`` block ends: other tests verify every organization."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from backoffice.db import make_engine
from backoffice.domain.audit_chain import ChainRow, KeptHead
from backoffice.services import audit

_ROWS = text(
    """
    select org_id::text, seq,
           to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at_utc,
           coalesce(actor_user_id::text, '') as actor_user_id, actor_label, action, entity_type,
           coalesce(entity_id, '') as entity_id, data::text as data_text, prev_hash, hash
      from audit_events where org_id = :org order by seq
    """
)


def chain_of(admin_engine, org_id) -> list[ChainRow]:
    with admin_engine.connect() as conn:
        return [ChainRow(**r) for r in conn.execute(_ROWS, {"org": org_id}).mappings()]


def kept_head(admin_engine, org_id, source: str = "kept by the test") -> KeptHead:
    """The organization's newest event now, as a head kept outside the database."""
    last = chain_of(admin_engine, org_id)[-1]
    return KeptHead(last.org_id, last.seq, last.hash, source)


def breaks_for(session, *org_ids) -> list:
    _, breaks = audit.verify_chain(session)
    session.rollback()
    wanted = {str(o) for o in org_ids}
    return [b for b in breaks if b.org_id in wanted]


@contextmanager
def newest_events_cut(superuser_url: str, org_id, from_seq: int) -> Iterator[list[dict]]:
    """Delete the organization's events from ``from_seq`` on, as a superuser with the append-only trigger
    off; yields the deleted rows. Afterwards every event from ``from_seq`` on (including any written
    meanwhile) is removed and the deleted rows are put back as they were."""
    engine = make_engine(superuser_url)
    params = {"org": org_id, "seq": from_seq}
    with engine.begin() as conn:
        saved = [
            dict(r)
            for r in conn.execute(
                text("select * from audit_events where org_id = :org and seq >= :seq order by seq"), params
            ).mappings()
        ]
        assert saved, f"org {org_id} has no event #{from_seq}"
        conn.execute(text("set local lock_timeout = '5s'"))
        conn.execute(text("alter table audit_events disable trigger audit_events_append_only"))
        conn.execute(text("delete from audit_events where org_id = :org and seq >= :seq"), params)
        conn.execute(text("alter table audit_events enable trigger audit_events_append_only"))
    try:
        yield saved
    finally:
        with engine.begin() as conn:
            conn.execute(text("set local lock_timeout = '5s'"))
            conn.execute(text("alter table audit_events disable trigger audit_events_append_only"))
            conn.execute(text("alter table audit_events disable trigger audit_events_chain"))
            conn.execute(text("delete from audit_events where org_id = :org and seq >= :seq"), params)
            for row in saved:
                cols = list(row)
                values = ", ".join("cast(:data as jsonb)" if c == "data" else f":{c}" for c in cols)
                conn.execute(
                    text(f"insert into audit_events ({', '.join(cols)}) values ({values})"),
                    {**row, "data": json.dumps(row["data"])},
                )
            conn.execute(text("alter table audit_events enable trigger audit_events_chain"))
            conn.execute(text("alter table audit_events enable trigger audit_events_append_only"))
        engine.dispose()
