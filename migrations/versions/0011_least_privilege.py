"""Least privilege: the worker role gets what its jobs use, the web role loses what no page uses.

Revision ID: 0011_least_privilege
Revises: 0010_sign_in_sessions

No table changes: the files under ``sql/`` are applied again, and with them (``tests/integration/
test_privileges.py`` holds both roles to their lists):

- The worker role no longer gets every table privilege of the web role's (``pg_temp.grant_to_app`` granted
  to both): ``pg_temp.grant_to_worker`` gives it what the jobs of ``backoffice/jobs`` and the services they
  call read and write. It reads what its messages and receipts say (never a contractor's payout details,
  nor of users more than id, email, name and whether active); it writes the outbox, notifications,
  receipts and their audit events; it updates nothing but how an outbox delivery went. It loses every
  other INSERT, UPDATE and DELETE, and SELECT on invites, ledger entries, AP export files, evidence bytes,
  change order lines and notifications, and EXECUTE on ``ap_csv_text()`` (PUBLIC's).
- The web role loses INSERT on ``notifications`` and ``documents`` (the worker writes them, no request
  does), DELETE on ``contractors`` (no page removes one), INSERT on ``change_orders.created_at`` (the
  database's now() says when it was issued: ``milestones_guard`` takes a change order created now() for
  one of this transaction), INSERT on the delivery columns of ``email_messages`` (``last_error``,
  ``provider_id``, ``sent_at``, ``created_at``, ``updated_at``: a message cannot be written as sent), and
  EXECUTE on ``money_percent_of``, ``milestone_amounts``, ``withheld_bps`` and ``is_manager``, which only the
  SECURITY DEFINER guards call (as the owner).
"""

from backoffice.schema import apply_rls_policies

revision = "0011_least_privilege"
down_revision = "0010_sign_in_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_rls_policies()


def downgrade() -> None:
    # Nothing to undo: the files are always the current ones, and every earlier revision applies them the same way.
    pass
