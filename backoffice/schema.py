"""Schema management: Alembic upgrades as the owner role, and the RLS policy file."""

from __future__ import annotations

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from backoffice.config import MIGRATIONS_DIR, RLS_POLICIES_SQL
from backoffice.db import make_engine


def apply_rls_policies() -> None:
    """Apply the current sql/rls_policies.sql inside the running migration."""
    # Straight to psycopg: the file holds many statements, dollar quotes and % signs that neither
    # SQLAlchemy's text() nor a parameterised execute should interpret.
    op.get_bind().connection.driver_connection.execute(RLS_POLICIES_SQL.read_text())


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def app_role_of(app_url: str) -> str:
    role = make_url(app_url).username
    if not role:
        raise SystemExit("DATABASE_URL must name the app role (postgresql://ROLE:password@host/db).")
    return role


def upgrade(admin_url: str, app_url: str, revision: str = "head") -> None:
    """Migrate to ``revision`` as the owner role, granting to the app role named in ``app_url``."""
    cfg = alembic_config()
    engine = make_engine(admin_url)
    try:
        with engine.connect() as connection:
            cfg.attributes["connection"] = connection
            cfg.attributes["app_role"] = app_role_of(app_url)
            command.upgrade(cfg, revision)
            connection.commit()
    finally:
        engine.dispose()


def pending_revisions(admin_url: str) -> bool:
    """True when the database is not at the newest migration."""
    script = ScriptDirectory.from_config(alembic_config())
    engine = make_engine(admin_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return set(current) != set(script.get_heads())
