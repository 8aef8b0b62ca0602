"""The payment queue's selection (issue 22, bulk work): which rows can be ticked, and "every payment that matches the
filter" as the server reads it again when an action runs, with its count and net total per currency.

A row can be selected when it is authorized (status approved) and nothing stops its payment: no live hold on it or
its contractor, no missing tax form the organization requires (the BLOCKED condition the queue's "Blocked" filter
uses), no self-billed invoice waiting for or refused by its contractor. The services check all of it again, and the
database guards refuse the rest; this is what the queue offers, so that "all matching" never counts what the action
would refuse."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from backoffice.queries.money import BLOCKED, QueueFilters
from backoffice.queries.payability import acceptance_block_states


@dataclass(frozen=True)
class CurrencySum:
    currency: str
    count: int
    net_minor: int


@dataclass(frozen=True)
class Matching:
    """Every selectable payment the filters match: how many, and their net per currency."""

    count: int
    sums: list[CurrencySum]

    @property
    def token(self) -> str:
        """What the person confirmed, as the form carries it back ("3:EUR=50000,USD=311160"): an action on "all
        matching" runs only if the server finds the same count and totals again, so nobody exports a set they did not
        see (a payment authorized meanwhile waits for the next run instead of slipping in)."""
        return f"{self.count}:" + ",".join(f"{s.currency}={s.net_minor}" for s in self.sums)


def _selectable(session: Session, filters: QueueFilters) -> tuple[str, dict]:
    where, params = filters.where()
    answers = list(acceptance_block_states(session, None))
    return (
        f"{where} and i.status = 'approved' and not {BLOCKED} and not (i.id = any(:answer_blocked))",
        params | {"answer_blocked": answers},
    )


def matching(session: Session, filters: QueueFilters) -> Matching:
    """Count and net per currency of the selectable payments the filters match (the page's cursor is ignored)."""
    where, params = _selectable(session, filters)
    sums = [
        CurrencySum(**r)
        for r in session.execute(
            text(
                "select i.currency, count(*)::int as count, coalesce(sum(i.net_minor), 0)::bigint as net_minor"
                f"  from invoices i where {where} group by i.currency order by i.currency"
            ),
            params,
        ).mappings()
    ]
    return Matching(sum(s.count for s in sums), sums)


def matching_ids(session: Session, filters: QueueFilters, *, limit: int) -> list[uuid.UUID]:
    """The ids of the selectable payments the filters match, in invoice-number order, at most ``limit`` (the caller
    refuses a selection larger than its action takes rather than acting on part of it)."""
    where, params = _selectable(session, filters)
    return list(
        session.execute(
            text(f"select i.id from invoices i where {where} order by i.number limit :limit"),
            params | {"limit": limit},
        ).scalars()
    )


def summary_of(session: Session, invoice_ids: list[uuid.UUID]) -> Matching:
    """Count and net per currency of these invoices: what a bulk action tells it did."""
    sums = [
        CurrencySum(**r)
        for r in session.execute(
            text(
                "select currency, count(*)::int as count, coalesce(sum(net_minor), 0)::bigint as net_minor"
                "  from invoices where id = any(:ids) group by currency order by currency"
            ),
            {"ids": list(invoice_ids)},
        ).mappings()
    ]
    return Matching(sum(s.count for s in sums), sums)
