"""Invitations go out by email: the message the app writes carries the same one-time link the admin's
page shows, a new link writes a new message (and retires the old link), and the worker sends or keeps
it like any other message of the organization's outbox.

(The invitation flow itself: test_invitations.py.)
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.jobs import OFFLINE, jobs, online, run_jobs
from kit.resend_stub import resend_stub
from kit.web import csrf_token, followed, invite, invite_link, invite_token, membership, signed_in, user_by_email
from sqlalchemy import text


def invite_messages(admin_engine, org_id, email: str) -> list:
    """The invitation emails to this address in this organization, oldest first (as the owner role)."""
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, org_id, event, recipient, recipient_user_id, subject, html, text, status, attempts,"
                " dedupe_key"
                " from email_messages where org_id = :o and event = 'invite' and lower(recipient) = lower(:e)"
                " order by created_at, id"
            ),
            {"o": org_id, "e": email},
        ).all()


def emailed_token(message) -> str:
    """The token of the /invite/ link in the message's text, checked to be the same link as in its HTML."""
    match = re.search(r"Accept the invitation: (\S+/invite/([A-Za-z0-9_\-]+))\n", message.text)
    assert match, message.text
    assert f'href="{html_lib.escape(match.group(1))}"' in message.html
    return match.group(2)


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


def test_inviting_a_member_emails_the_same_one_time_link_the_page_shows(admin, app, world, admin_engine):
    email = f"newbie-{world.suffix}@example.com"
    html = followed(admin, invite(admin, email=email, name="Nina Newbie", role="finance"), "/admin/members")
    token = invite_token(html)

    (m,) = invite_messages(admin_engine, world.org_a, email)
    user = user_by_email(admin_engine, email)
    assert (m.org_id, m.event, m.recipient, m.recipient_user_id, m.status) == (
        world.org_a,
        "invite",
        email,
        user.id,
        "queued",
    )
    assert m.subject == f"Ada Admin invited you to Org A {world.suffix} on backoffice"
    assert "Hello Nina Newbie," in m.text
    assert "as a member of the finance team" in m.text
    assert emailed_token(m) == token
    # the link points at the configured site, never at whatever Host the admin's request came with
    assert f"{app.config['BASE_URL']}/invite/{token}" in m.text
    (job,) = [
        j for j in jobs(admin_engine, task="send_email", org_ids=[world.org_a]) if j["args"]["message_id"] == str(m.id)
    ]
    assert job["status"] == "todo"
    # and the emailed link is the one that works
    assert app.test_client().get(f"/invite/{emailed_token(m)}").status_code == 200


def test_inviting_an_address_with_an_account_elsewhere_emails_it_a_link_too(admin, app, world, admin_engine):
    html = followed(admin, invite(admin, email=world.admin_b.email, name="Bea B", role="owner"), "/admin/members")
    token = invite_token(html)
    (m,) = invite_messages(admin_engine, world.org_a, world.admin_b.email)
    assert emailed_token(m) == token and m.recipient_user_id == world.admin_b.id
    assert "as a project owner" in m.text
    assert invite_messages(admin_engine, world.org_b, world.admin_b.email) == []  # written in the inviting org only


def test_inviting_a_contractors_user_emails_the_link_shown_on_the_contractor_page(admin, world, admin_engine):
    email = f"crew-{world.suffix}@example.com"
    response = admin.post(
        f"/admin/contractors/{world.contractor_y}/users",
        data={
            "email": email,
            "name": "Cal Crew",
            "csrf_token": csrf_token(admin, f"/admin/contractors/{world.contractor_y}"),
        },
    )
    html = followed(admin, response, f"/admin/contractors/{world.contractor_y}")
    link = invite_link(html)
    assert link
    (m,) = invite_messages(admin_engine, world.org_a, email)
    assert emailed_token(m) == link.rsplit("/invite/", 1)[1]
    assert "as a contractor" in m.text


def test_a_refused_invitation_writes_no_email(admin, world, admin_engine):
    # already a member: the form answers 422 and nothing is written
    response = invite(admin, email=world.owner.email, name="Omar Owner", role="owner")
    assert response.status_code == 422
    assert invite_messages(admin_engine, world.org_a, world.owner.email) == []
    bad = invite(admin, email="not an address", name="Nobody", role="owner")
    assert bad.status_code == 422
    with admin_engine.connect() as conn:
        assert (
            conn.execute(
                text("select count(*) from email_messages where org_id = :o and event = 'invite'"), {"o": world.org_a}
            ).scalar_one()
            == 0
        )


def test_a_new_link_writes_a_new_email_and_the_old_link_stops_working(admin, app, world, admin_engine):
    email = f"again-{world.suffix}@example.com"
    first_page = followed(admin, invite(admin, email=email, name="Alex Again"), "/admin/members")
    first = invite_token(first_page)
    user = user_by_email(admin_engine, email)
    mid = membership(admin_engine, world.org_a, user.id).id
    response = admin.post(f"/admin/members/{mid}/reinvite", data={"csrf_token": csrf_token(admin, "/admin/members")})
    second = invite_token(followed(admin, response, "/admin/members"))

    old, new = invite_messages(admin_engine, world.org_a, email)
    assert emailed_token(old) == first and emailed_token(new) == second != first
    assert old.dedupe_key != new.dedupe_key
    assert "Hello Alex Again," in new.text
    anonymous = app.test_client()
    assert anonymous.get(f"/invite/{emailed_token(old)}").status_code == 404
    assert anonymous.get(f"/invite/{emailed_token(new)}").status_code == 200


def test_without_an_api_key_the_worker_keeps_the_invitation(admin, world, admin_engine, database):
    email = f"offline-{world.suffix}@example.com"
    assert invite(admin, email=email, name="Olly Offline", role="owner").status_code == 303
    run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)
    (m,) = invite_messages(admin_engine, world.org_a, email)
    assert (m.status, m.attempts) == ("kept", 0)


def test_with_an_api_key_the_worker_sends_the_invitation_once(admin, world, admin_engine, database):
    email = f"online-{world.suffix}@example.com"
    token = invite_token(followed(admin, invite(admin, email=email, name="Ona Online", role="owner"), "/admin/members"))
    with resend_stub() as stub:
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
    (delivery,) = stub.deliveries
    assert delivery["to"] == [email]
    assert f"/invite/{token}" in delivery["text"] and f"/invite/{token}" in delivery["html"]
    (m,) = invite_messages(admin_engine, world.org_a, email)
    assert (m.status, m.attempts) == ("sent", 1)


def test_the_invitation_email_is_on_its_outbox_page(admin, world, admin_engine, database):
    email = f"visible-{world.suffix}@example.com"
    token = invite_token(
        followed(admin, invite(admin, email=email, name="Vic Visible", role="owner"), "/admin/members")
    )
    run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)
    (m,) = invite_messages(admin_engine, world.org_a, email)
    page = admin.get(f"/admin/outbox/{m.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"To {email}" in html and "Kept (not sent)" in html and "invite" in html
    assert f"/invite/{token}" in html  # the text body, shown to the admin who may hand the link over
    assert admin.get(f"/admin/outbox/{m.id}/html").get_data(as_text=True) == m.html


def test_the_invitation_email_is_listed_in_the_outbox(admin, world, admin_engine, database):
    email = f"listed-{world.suffix}@example.com"
    assert invite(admin, email=email, name="Lee Listed", role="owner").status_code == 303
    run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)
    (m,) = invite_messages(admin_engine, world.org_a, email)
    response = admin.get("/admin/outbox/?event=invite")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'href="/admin/outbox/{m.id}"' in html and email in html


def test_another_organizations_admin_never_sees_the_invitation_email(app, login, admin, world, admin_engine):
    email = f"private-{world.suffix}@example.com"
    assert invite(admin, email=email, name="Pri Vate", role="owner").status_code == 303
    (m,) = invite_messages(admin_engine, world.org_a, email)
    admin_b = signed_in(app, login, world.admin_b)
    assert admin_b.get(f"/admin/outbox/{m.id}").status_code == 404
    assert admin_b.get(f"/admin/outbox/{m.id}/html").status_code == 404
