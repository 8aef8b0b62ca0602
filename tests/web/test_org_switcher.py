"""The organization switcher: shown to people with more than one membership; switching changes
which tenant every page works in; only organizations the person belongs to can be chosen."""

from __future__ import annotations

import re
import uuid

import pytest
from kit.web import csrf_token
from sqlalchemy import text

from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.services import bootstrap


@pytest.fixture
def two_orgs(world, admin_engine):
    """world.admin becomes an admin of org B as well (create_user reuses the user by email)."""
    with make_session_factory(admin_engine)() as session:
        user = bootstrap.create_user(
            session, email=world.admin.email, name=world.admin.name, org_id=world.org_b, role=Role.ADMIN
        )
        session.commit()
    assert user.id == world.admin.id
    return world


def _switcher(html: str) -> str | None:
    match = re.search(r"<form[^>]*org-switcher[^>]*>.*?</form>", html, re.S)
    return match.group(0) if match else None


def _switch(client, org_id):
    return client.post("/orgs/switch", data={"org_id": str(org_id), "csrf_token": csrf_token(client, "/")})


def test_user_with_two_memberships_sees_the_switcher(client, two_orgs, login):
    w = two_orgs
    login(client, w.admin)
    form = _switcher(client.get("/").get_data(as_text=True))
    assert form, "switcher shown"
    options = re.findall(r'<option value="([^"]+)"\s*(selected)?>([^<]*)</option>', form)
    assert {uuid.UUID(v) for v, _, _ in options} == {w.org_a, w.org_b}
    labels = {uuid.UUID(v): label for v, _, label in options}
    assert labels[w.org_a] == f"Org A {w.suffix} — Admin"
    assert labels[w.org_b] == f"Org B {w.suffix} — Admin"
    selected = [uuid.UUID(v) for v, sel, _ in options if sel]
    assert selected == [w.org_a]  # the first organization by name


def test_user_with_one_membership_sees_no_switcher(client, world, login):
    login(client, world.owner)
    html = client.get("/").get_data(as_text=True)
    assert _switcher(html) is None
    assert 'name="org_id"' not in html
    assert f"Org A {world.suffix}" in html  # the organization is named, just not switchable


def test_switching_changes_what_contractors_lists(client, two_orgs, login, admin_engine):
    w = two_orgs
    login(client, w.admin)
    before = client.get("/admin/contractors").get_data(as_text=True)
    assert f"Contractor X {w.suffix}" in before and f"Contractor Z {w.suffix}" not in before

    response = _switch(client, w.org_b)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = client.get("/").get_data(as_text=True)
    assert "You are now working in this organization as admin." in home

    after = client.get("/admin/contractors").get_data(as_text=True)
    assert f"Contractor Z {w.suffix}" in after
    assert f"Contractor X {w.suffix}" not in after and f"Contractor Y {w.suffix}" not in after
    assert f"Org B {w.suffix} · Admin" in home
    selected = re.findall(r'<option value="([^"]+)"\s*selected>', _switcher(home))
    assert [uuid.UUID(v) for v in selected] == [w.org_b]

    # org B's contractor is now reachable, org A's is not
    assert client.get(f"/admin/contractors/{w.contractor_z}").status_code == 200
    assert client.get(f"/admin/contractors/{w.contractor_x}").status_code == 404

    # and back
    assert _switch(client, w.org_a).status_code == 303
    back = client.get("/admin/contractors").get_data(as_text=True)
    assert f"Contractor X {w.suffix}" in back and f"Contractor Z {w.suffix}" not in back


def test_switch_is_audited_in_the_target_org(client, two_orgs, login, admin_engine):
    w = two_orgs
    login(client, w.admin)
    _switch(client, w.org_b)
    with admin_engine.connect() as conn:
        n = conn.execute(
            text(
                "select count(*) from audit_events where org_id = :o and actor_user_id = :u "
                "and action = 'auth.switched_organization'"
            ),
            {"o": w.org_b, "u": w.admin.id},
        ).scalar_one()
    assert n == 1


def test_switching_changes_settings_page(client, two_orgs, login):
    w = two_orgs
    login(client, w.admin)
    _switch(client, w.org_b)
    html = client.get("/admin/settings").get_data(as_text=True)
    assert f'value="Org B {w.suffix}"' in html
    assert '<option selected value="EUR">' in html or re.search(
        r'<option[^>]*value="EUR"[^>]*selected|<option[^>]*selected[^>]*value="EUR"', html
    )


def test_switch_to_org_not_a_member_of_is_404(client, world, login):
    login(client, world.owner)
    response = _switch(client, world.org_b)
    assert response.status_code == 404
    home = client.get("/").get_data(as_text=True)
    assert f"Org A {world.suffix}" in home
    assert f"Org B {world.suffix}" not in home


def test_switch_to_unknown_or_malformed_org_is_404(client, two_orgs, login):
    w = two_orgs
    login(client, w.admin)
    assert _switch(client, uuid.uuid4()).status_code == 404
    assert _switch(client, "not-a-uuid").status_code == 404
    assert client.post("/orgs/switch", data={"csrf_token": csrf_token(client, "/")}).status_code == 404
    # still working in org A
    assert f"Contractor X {w.suffix}" in client.get("/admin/contractors").get_data(as_text=True)


def test_role_follows_the_organization(client, world, login, admin_engine):
    """Finance in org A, admin in org B: what the person may do follows the switch."""
    with make_session_factory(admin_engine)() as session:
        bootstrap.create_user(
            session, email=world.finance.email, name=world.finance.name, org_id=world.org_b, role=Role.ADMIN
        )
        session.commit()
    login(client, world.finance)
    assert client.get("/admin/contractors").status_code == 403
    assert _switch(client, world.org_b).status_code == 303
    assert client.get("/admin/contractors").status_code == 200
    assert _switch(client, world.org_a).status_code == 303
    assert client.get("/admin/contractors").status_code == 403


def test_removed_from_current_org_falls_back_to_remaining_membership(client, two_orgs, login, admin_engine):
    w = two_orgs
    login(client, w.admin)
    assert _switch(client, w.org_b).status_code == 303
    with admin_engine.begin() as conn:
        conn.execute(
            text("delete from memberships where org_id = :o and user_id = :u"), {"o": w.org_b, "u": w.admin.id}
        )
    html = client.get("/admin/contractors").get_data(as_text=True)
    assert f"Contractor Z {w.suffix}" not in html
    assert f"Contractor X {w.suffix}" in html
