"""Names for a page of audit events (services/audit_words.py writes the sentences): the people, milestones,
payments, engagements, contractors and projects the events name by id, and the organization's locale and
currency. One query per kind, each bounded by the page's ids (at most 50 events), read under RLS like the page:
an id the reader may not see stays unnamed and the sentence says what kind of thing it was."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.services.audit_words import Names

# Which kind of thing an id names: the event's own entity, or a key of its data.
_DATA_KEYS = {
    "milestone_id": "milestone",
    "contractor_id": "contractor",
    "engagement_id": "engagement",
    "project_id": "project",
    "from_proposal": "proposal",
    "on_behalf_of": "user",
    "confirmed_by": "user",
}

# kind -> a statement giving (id, name, currency) for :ids
_LOOKUPS = {
    "milestone": "select m.id::text, m.title, e.currency from milestones m"
    " join engagements e on e.id = m.engagement_id and e.org_id = m.org_id where m.id = any(:ids)",
    "invoice": "select id::text, invoice_number, currency from invoices where id = any(:ids)",
    "engagement": "select id::text, title, currency from engagements where id = any(:ids)",
    "contractor": "select id::text, legal_name, null from contractors where id = any(:ids)",
    "user": "select id::text, coalesce(nullif(name, ''), email), null from users where id = any(:ids)",
    "membership": "select m.id::text, coalesce(nullif(u.name, ''), u.email), null from memberships m"
    " join users u on u.id = m.user_id where m.id = any(:ids)",
    "project": "select id::text, title, null from projects where id = any(:ids)",
    "proposal": "select q.id::text, p.title, p.currency from proposals q join projects p on p.id = q.project_id"
    " where q.id = any(:ids)",
}


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def audit_names(session: Session, org_id: uuid.UUID, events: Iterable) -> Names:
    """What the page can name among ``events`` (AuditEvent rows), in the organization's format."""
    wanted: dict[str, set[uuid.UUID]] = defaultdict(set)
    for e in events:
        if e.actor_user_id:
            wanted["user"].add(e.actor_user_id)
        if e.entity_type in _LOOKUPS and (found := _uuid(e.entity_id)):
            wanted[e.entity_type].add(found)
        for key, kind in _DATA_KEYS.items():
            if isinstance(e.data, dict) and (found := _uuid(e.data.get(key))):
                wanted[kind].add(found)
    names: dict[str, str] = {}
    currencies: dict[str, str] = {}
    for kind, ids in wanted.items():
        for id_, name, currency in session.execute(text(_LOOKUPS[kind]), {"ids": list(ids)}):
            names[id_] = name
            if currency:
                currencies[id_] = currency
    locale, currency = session.execute(
        text("select locale, default_currency from organizations where id = :org"), {"org": org_id}
    ).one()
    return Names(names, currencies, locale, currency)
