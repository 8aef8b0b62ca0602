"""The outbox at any size (issue 23, item 2): its filters walk an index.

Revision ID: 0016_outbox_speed
Revises: 0015_tenant_keys

The outbox page counted every message of the organization per status, listed the distinct events of all of
them, and counted the whole filtered list (260,000 messages: 150 ms). Now each status's count stops at
1,001 and the events are read by a loose index scan (queries/notifications.outbox), the list is paged by keys;
these two indexes are what they walk: by status, and by event, each newest first.
"""

from alembic import op

revision = "0016_outbox_speed"
down_revision = "0015_tenant_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Idempotent, like every revision since 0011 (tests/integration/test_least_privilege.py).
    op.execute("""
        create index if not exists email_messages_by_status on email_messages (org_id, status, created_at desc, id);
        create index if not exists email_messages_by_event on email_messages (org_id, event, created_at desc, id);
    """)


def downgrade() -> None:
    op.execute("drop index if exists email_messages_by_status; drop index if exists email_messages_by_event;")
