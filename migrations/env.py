"""Alembic environment: runs as the owner role; migrations re-apply the files under sql/ (schema.SQL_FILES).

Called by `backoffice db upgrade` (and the test suite), which put the owner connection and the names of
the app role and the worker role in ``config.attributes``.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
app_role = config.attributes["app_role"]
worker_role = config.attributes["worker_role"]

context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    connection.exec_driver_sql("select set_config('backoffice.app_role', %(r)s, true)", {"r": app_role})
    connection.exec_driver_sql("select set_config('backoffice.worker_role', %(r)s, true)", {"r": worker_role})
    context.run_migrations()
