"""An invoice's own columns are checked once, when it is written, not again by every status move (issue 23,
item 5).

Revision ID: 0018_invoice_checks_once
Revises: 0017_visible_users_once

PostgreSQL evaluates every CHECK constraint of a table on every UPDATE of a row, whichever columns change.
Fourteen of the invoices' constraints are over columns that never change once the invoice is written
(amounts, rates, kind, number, description, currency, dates, release reason: ``invoices_move_guard`` refuses
any change to them, and an export's WHEN clause lets through only rows where none changed). Re-evaluating them
for each of 100,000 invoices an AP export moves cost 73 ms of a 1.1 s export (``bench/ap_export.py``; the
regular expression of the currency and the trimmed length of the description most). They now run in
``invoices_guard``, the BEFORE INSERT trigger every invoice already passes, with the same expressions, the same
constraint names and the same error (SQLSTATE 23514, "violates check constraint ..."). The constraints over
columns a move changes (status, batch, paid date) stay CHECK constraints.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0018_invoice_checks_once"
down_revision = "0017_visible_users_once"
branch_labels = None
depends_on = None

# name -> expression: the same list as invoices_guard's (sql/money.sql); tests/integration/
# test_money_guards.py holds the two equal.
MOVED = {
    "invoices_kind_check": "kind = any (array['milestone', 'retainage_release'])",
    "invoices_number_check": "number > 0",
    "invoices_description_check": "length(btrim(description)) between 1 and 500",
    "invoices_currency_check": "currency ~ '^[A-Z]{3}$'",
    "invoices_gross_minor_check": "gross_minor > 0",
    "invoices_retainage_bps_check": "retainage_bps between 0 and 10000",
    "invoices_retainage_minor_check": "retainage_minor >= 0",
    "invoices_net_minor_check": "net_minor >= 0",
    "invoices_fee_bps_check": "fee_bps between 0 and 10000",
    "invoices_fee_minor_check": "fee_minor >= 0",
    "invoices_release_reason_check": ("release_reason is null or length(btrim(release_reason)) between 1 and 2000"),
    "invoices_amounts_add_up": "net_minor = gross_minor - retainage_minor and total_minor = gross_minor + fee_minor",
    "invoices_check": "due_date >= issued_on",
    "invoices_kind_shape": (
        "(kind = 'milestone' and milestone_id is not null and review_id is not null and release_reason is null)"
        " or (kind = 'retainage_release' and milestone_id is null and review_id is null and retainage_minor = 0"
        " and fee_minor = 0)"
    ),
}


def upgrade() -> None:
    for name in MOVED:
        op.execute(f"alter table invoices drop constraint if exists {name}")
    apply_rls_policies()


def downgrade() -> None:
    for name, expression in MOVED.items():
        op.execute(f"alter table invoices drop constraint if exists {name}")
        op.execute(f"alter table invoices add constraint {name} check ({expression})")
