"""The audit trail's hash chain, recomputed independently of the database trigger that writes it.

Each event's hash is sha256 over its canonical text, which ends with the previous event's hash; the
first event of an organization links to 64 zeros. The trigger in sql/audit.sql builds the same
text; `backoffice audit verify` recomputes it here, so a row changed behind the app's back is found.
"""

from __future__ import annotations

import hashlib
import re
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


# --- heads kept outside the database --------------------------------------------------------------------
# A trail cut short at its newest end still links up; only a head kept elsewhere from before shows it.
# Documents and emails carry the head as one line, ``head_line``, which `backoffice audit verify --heads`
# reads back.


@dataclass(frozen=True)
class KeptHead:
    """An organization's newest event as it was when a document, an email or an operator kept it."""

    org_id: str
    seq: int
    hash: str
    source: str  # where it was kept, to name it when the trail no longer holds it


@dataclass(frozen=True)
class LostHead:
    head: KeptHead
    reason: str


def head_line(org_id: object, seq: int, hash: str) -> str:
    """The one way a chain head is written down: ``org_id seq hash``."""
    return f"{org_id} {seq} {hash}"


_HEAD_LINE = re.compile(
    r"(?:head\s+)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s+([1-9][0-9]{0,18})\s+([0-9a-f]{64})",
    re.IGNORECASE,
)


def parse_heads(text: str, source: str) -> list[KeptHead]:
    """Heads written one per line as ``head_line`` writes them (an optional leading ``head``, as
    `backoffice audit verify` prints them, is allowed); blank lines and ``#`` comments are skipped.
    Raises ValueError naming the first line that is not a head."""
    heads = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = _HEAD_LINE.fullmatch(line)
        if m is None:
            raise ValueError(f"{source} line {number} is not 'org_id seq hash': {line[:120]!r}")
        heads.append(KeptHead(m[1].lower(), int(m[2]), m[3].lower(), f"{source} line {number}"))
    return heads
