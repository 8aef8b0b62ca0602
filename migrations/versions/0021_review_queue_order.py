"""The review queue waits by when work was submitted, not by when its milestone last changed (issue 23).

Revision ID: 0021_review_queue_order
Revises: 0020_contractor_retainage

Revision 0014 ordered the queue by ``milestones.updated_at`` of submitted milestones, which the move to
submitted stamps; but a change order adjusting a submitted milestone stamps it too, and sent that work to the
back of the queue with its wait shown as starting again. ``milestones.submitted_at`` is stamped by
``milestones_guard`` on the move to submitted only and kept through every other update; the queue's index
walks it. Filled here from each submitted milestone's latest submission.
"""

from alembic import op

from backoffice.schema import apply_rls_policies

revision = "0021_review_queue_order"
down_revision = "0020_contractor_retainage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("alter table milestones add column if not exists submitted_at timestamptz")
    op.execute("alter table milestones disable trigger user")  # a fill of the new column; guards back below
    op.execute("""
        update milestones m set submitted_at = s.submitted_at
          from (select distinct on (org_id, milestone_id) org_id, milestone_id, submitted_at from submissions
                 order by org_id, milestone_id, revision desc) s
         where s.org_id = m.org_id and s.milestone_id = m.id and m.status = 'submitted' and m.submitted_at is null
    """)
    op.execute("alter table milestones enable trigger user")
    op.execute("drop index if exists milestones_review_queue_idx")
    op.execute(
        "create index milestones_review_queue_idx on milestones (org_id, submitted_at, id) where status = 'submitted'"
    )
    apply_rls_policies()


def downgrade() -> None:
    op.execute("drop index if exists milestones_review_queue_idx")
    op.execute(
        "create index milestones_review_queue_idx on milestones (org_id, updated_at, id) where status = 'submitted'"
    )
    # The column stays: the SQL files are always the current ones, and milestones_guard stamps it.
