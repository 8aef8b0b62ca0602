"""New organizations pay the approved part of a partial approval (issue 22, item 1).

Revision ID: 0032_partial_split_default
Revises: 0031_self_billing

Under ``route_back`` a "Partial" decision paid nothing and sent the milestone back, which is what Dispute does;
people expect a partial approval to pay the approved part. So the column's default becomes ``split`` (the rule is
named in backoffice/domain/reviews.DEFAULT_PARTIAL_POLICY). Existing organizations keep the policy they chose or
had: changing it under them would change what their owners' next "Partial" does without anyone deciding so.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0032_partial_split_default"
down_revision = "0031_self_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table organizations alter column partial_policy set default 'split'")
    apply_rls_policies()


def downgrade() -> None:
    op.execute("alter table organizations alter column partial_policy set default 'route_back'")
    apply_rls_policies()
