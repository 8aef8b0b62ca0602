"""New organizations pay the approved part of a partial approval (issue 22, item 1): the column's default
(migration 0032) and the set-up service both say split; an organization that chose route_back keeps it."""

from __future__ import annotations

import secrets

from sqlalchemy import text

from backoffice.db import make_session_factory, unit_of_work
from backoffice.services import bootstrap


def policy_of(admin_engine, name: str) -> str:
    with admin_engine.connect() as conn:
        return conn.execute(text("select partial_policy from organizations where name = :n"), {"n": name}).scalar_one()


def test_an_organization_created_by_the_set_up_service_splits_partial_approvals(admin_engine):
    name = f"Split by default {secrets.token_hex(4)}"
    with make_session_factory(admin_engine)() as session, unit_of_work(session):
        bootstrap.create_org(session, name)
    assert policy_of(admin_engine, name) == "split"


def test_the_databases_default_for_a_new_organization_is_split(admin_engine):
    name = f"Inserted {secrets.token_hex(4)}"
    with admin_engine.begin() as conn:
        conn.execute(text("insert into organizations (name) values (:n)"), {"n": name})
    assert policy_of(admin_engine, name) == "split"


def test_an_organization_may_still_choose_route_back(admin_engine):
    name = f"Routes back {secrets.token_hex(4)}"
    with make_session_factory(admin_engine)() as session, unit_of_work(session):
        bootstrap.create_org(session, name, partial_policy="route_back")
    assert policy_of(admin_engine, name) == "route_back"
