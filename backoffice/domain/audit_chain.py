"""The audit trail's hash chain, recomputed independently of the database trigger that writes it.

Each event's hash is sha256 over its canonical text, which ends with the previous event's hash; the
first event of an organization links to 64 zeros. The trigger in sql/audit.sql builds the same
text; `backoffice audit verify` recomputes it here, so a row changed behind the app's back is found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainRow:
    org_id: str
    seq: int
    occurred_at_utc: str  # 'YYYY-MM-DDTHH:MM:SS.ffffffZ', as the trigger formats it
    actor_user_id: str
    actor_label: str
    action: str
    entity_type: str
    entity_id: str
    data_text: str  # jsonb's canonical text form
    prev_hash: str
    hash: str


def canonical_text(row: ChainRow) -> str:
    return "|".join(
        [
            row.org_id,
            str(row.seq),
            row.occurred_at_utc,
            row.actor_user_id,
            row.actor_label,
            row.action,
            row.entity_type,
            row.entity_id,
            row.data_text,
            row.prev_hash,
        ]
    )


def expected_hash(row: ChainRow) -> str:
    return hashlib.sha256(canonical_text(row).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    org_id: str
    seq: int
    reason: str


def first_break(rows: list[ChainRow]) -> ChainBreak | None:
    """The first broken link of one organization's events, given in seq order; None if intact."""
    prev_hash, prev_seq = GENESIS, 0
    for row in rows:
        if row.seq != prev_seq + 1:
            return ChainBreak(row.org_id, row.seq, f"sequence jumps from {prev_seq} to {row.seq} (events missing)")
        if row.prev_hash != prev_hash:
            return ChainBreak(row.org_id, row.seq, "prev_hash does not match the previous event's hash")
        if expected_hash(row) != row.hash:
            return ChainBreak(row.org_id, row.seq, "contents do not match the stored hash (row altered)")
        prev_hash, prev_seq = row.hash, row.seq
    return None
