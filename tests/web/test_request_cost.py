"""What every request costs before its own work: the sign-in check, the person, their organizations and their
role come back in one statement (queries.identity.load_signed_in), after the one that sets the context.

Counting statements, not timing them: the floor every page pays (the bell polls every few seconds).
"""

from __future__ import annotations

from sqlalchemy import event


def statements_of(app, client, path: str) -> list[str]:
    seen: list[str] = []
    engine = app.extensions["backoffice.engine"]

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_bell_costs_two_statements_of_identity_and_one_of_its_own(app, client, world, login):
    login(client, world.finance)
    seen = statements_of(app, client, "/notifications/count")
    assert len(seen) == 4, seen
    assert seen[0].startswith("select set_config('app.user_id'")
    assert "from users u left join my_memberships() m" in seen[1]  # who, where, in what role: once
    assert seen[2].startswith("select set_config('app.user_id'")  # the page's transaction, acting in the org
    assert "FROM notifications" in seen[3]


def test_the_organization_switcher_comes_from_the_same_statement(app, client, world, login):
    login(client, world.admin)
    seen = statements_of(app, client, "/")
    assert not any("my_memberships" in s for s in seen[2:]), seen  # the switcher's list came with the identity
