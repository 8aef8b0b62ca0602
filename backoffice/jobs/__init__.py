"""Background jobs (DESIGN.md section 6): procrastinate on the same PostgreSQL.

- ``queue``: enqueue a job inside the caller's transaction (services call it before they commit), so a
  rollback enqueues nothing and a commit loses nothing.
- ``tasks``: what the worker runs: notify, send_email, issue_receipt, and the periodic review reminder,
  finance digest, admins' digest and people's daily digests. Each acts as its organization's worker (see
  ``runtime.worker_session``).
- ``runtime``: the worker's database (the worker role), mailer and the ``run_worker`` entry point.
"""
