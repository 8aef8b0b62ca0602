"""Background jobs run as their own database role; the job queue leaves the web role's reach.

Revision ID: 0007_worker_role
Revises: 0006_sql_by_area

The worker role (``DATABASE_WORKER_URL``; ``backoffice_worker`` in embedded mode) must exist before this
runs: the embedded set-up creates it, the README gives the SQL for an existing server. The files under
``sql/`` are applied again, and with them:

- ``app_membership()`` and its sibling helpers grant an admin's reach in the organization named by
  ``app.org_id`` only to a session whose login role is the worker role (its name is baked into the
  helpers); ``app.user_id = app.org_id`` is nobody's identity any more.
- The web role loses every privilege on the ``procrastinate`` schema (its tables, sequences and
  functions, PUBLIC's EXECUTE included); the worker role gets what procrastinate needs. The web role
  enqueues through ``enqueue_job()`` (``sql/jobs.sql``), which accepts the web's job kinds for the current
  organization only.
- ``job_org_ids()`` is the worker role's alone; the worker role gets the web role's table privileges and
  policy helpers, and its own policies on account messages; an audit event may carry no user (the worker's).
"""

from backoffice.schema import apply_rls_policies

revision = "0007_worker_role"
down_revision = "0006_sql_by_area"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_rls_policies()


def downgrade() -> None:
    # Nothing to undo: the files are always the current ones, and every earlier revision applies them the same way.
    pass
