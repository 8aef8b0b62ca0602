"""What every request costs before its own work: the sign-in check, the person, their organizations and their
role come back in one statement (queries.identity.load_signed_in), after the one that sets the context.

Counting statements, not timing them: the floor every page pays (the bell polls every few seconds).
"""

from __future__ import annotations

from kit.engagements import create_active, milestones_of
from kit.milestones import move_milestone
from kit.web import csrf_token
from sqlalchemy import event, text


def statements_of(app, request) -> tuple[object, list[str]]:
    """(the response to ``request()``, every statement the app ran for it)."""
    seen: list[str] = []
    engine = app.extensions["backoffice.engine"]

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return response, seen


def page_statements(app, client, path: str) -> list[str]:
    response, seen = statements_of(app, lambda: client.get(path))
    assert response.status_code == 200
    return seen


def test_the_bell_costs_two_statements_of_identity_and_one_of_its_own(app, client, world, login):
    login(client, world.finance)
    seen = page_statements(app, client, "/notifications/count")
    assert len(seen) == 4, seen
    assert seen[0].startswith("select set_config('app.user_id'")
    assert "from users u left join my_memberships() m" in seen[1]  # who, where, in what role: once
    assert seen[2].startswith("select set_config('app.user_id'")  # the page's transaction, acting in the org
    assert "FROM notifications" in seen[3]


def test_the_organization_switcher_comes_from_the_same_statement(app, client, world, login):
    login(client, world.admin)
    seen = page_statements(app, client, "/")
    assert not any("my_memberships" in s for s in seen[2:]), seen  # the switcher's list came with the identity


def test_an_approval_sets_the_context_once_per_transaction_and_names_no_one_twice(
    app, world, login, app_sessions, admin_engine
):
    """One set_config per transaction; no savepoint (a duplicate review is written as nothing, by ON CONFLICT
    DO NOTHING, and a duplicate invoice aborts what the unit of work rolls back anyway); the engagement's
    lock and the organization's policy in one statement, the invoice read back by its own INSERT; and the
    audit trail's 'name the person' statement runs only where no one is named (the demo's seeding)."""
    mid = milestones_of(admin_engine, create_active(app_sessions, world, title="Counted"))[0].id
    move_milestone(app_sessions, admin_engine, mid, "submitted")
    with admin_engine.connect() as conn:
        sid = conn.execute(text("select id from submissions where milestone_id = :m"), {"m": mid}).scalar_one()
    client = app.test_client()
    login(client, world.owner)
    token = csrf_token(client, f"/milestones/{mid}")
    response, seen = statements_of(
        app,
        lambda: client.post(
            f"/milestones/{mid}/decide", data={"submission_id": str(sid), "decision": "approve", "csrf_token": token}
        ),
    )
    assert response.status_code == 303
    assert not any(s.startswith("SAVEPOINT") for s in seen), seen
    contexts = sum("set_config('app.user_id', %(user_id)s, true), set_config" in s for s in seen)
    assert contexts == 2, seen  # the identity's transaction, the decision's
    assert not any("where nullif(current_setting('app.user_id'" in s for s in seen), seen
    assert not any(s.startswith("SELECT organizations.partial_policy") for s in seen), seen
    # 17 until issue 18; then one more: the approval policy the authorization starts under (services/approvals)
    assert len(seen) <= 18, (len(seen), seen)
