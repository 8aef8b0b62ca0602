"""Retainage per contractor is a derived total too (issue 23, item 2).

Revision ID: 0020_contractor_retainage
Revises: 0019_contractor_pages

The retainage report's "held per contractor" summed retainage_totals (a row per engagement) on every request:
3.7 ms at 9,400 engagements and 1,000 contractors, against 0.5 ms in the demo. ``contractor_retainage_totals``
keeps withheld and released per contractor and currency, maintained by the same statement trigger as the other
derived totals (``invoices_totals_apply``, sql/money.sql) and rebuilt with them; the report reads its 50 most
held from an index. tests/integration/test_derived_totals.py recomputes it from the invoices.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0020_contractor_retainage"
down_revision = "0019_contractor_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        create table if not exists contractor_retainage_totals (
            org_id uuid not null,
            contractor_id uuid not null,
            currency text not null,
            withheld_minor bigint not null,
            released_minor bigint not null,
            primary key (org_id, contractor_id, currency),
            foreign key (org_id, contractor_id) references contractors (org_id, id)
        );
        create index if not exists contractor_retainage_totals_held_idx
            on contractor_retainage_totals (org_id, (withheld_minor - released_minor) desc, contractor_id)
            where withheld_minor > 0;
    """)
    apply_rls_policies()
    op.execute("select rebuild_invoice_totals()")  # (sql/money.sql) from the invoices already there


def downgrade() -> None:
    op.execute("drop table if exists contractor_retainage_totals")
    apply_rls_policies()
