"""The outbox (admins): every email the organization wrote, its status and attempts, a preview, and
"Send again" for a message that was kept (no API key) or failed, never for one that was sent.

Messages are written the way the app writes them (services, the invitation form, the password form)
and sent by the real worker (jobs_kit.run_jobs): OFFLINE keeps them, ``online()`` sends them to the
local Resend stub.
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from kit.jobs import OFFLINE, jobs, online, run_jobs
from kit.money_pages import active_engagement
from kit.resend_stub import resend_stub
from kit.web import audit_events, csrf_token, flashes, invite, signed_in
from sqlalchemy import text

from backoffice.services.email_delivery import NO_API_KEY

# --- arranging and reading ------------------------------------------------------------------------------


def messages_of(admin_engine, org_id) -> list:
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, org_id, event, recipient, subject, html, text, status, attempts, last_error, provider_id"
                " from email_messages where org_id = :o order by created_at, id"
            ),
            {"o": org_id},
        ).all()


def message(admin_engine, message_id):
    with admin_engine.connect() as conn:
        return conn.execute(
            text(
                "select id, org_id, event, recipient, recipient_user_id, subject, html, text, status, attempts,"
                " last_error,"
                " provider_id from email_messages where id = :i"
            ),
            {"i": message_id},
        ).one()


def send_email_jobs(admin_engine, message_id, *, status: str | None = None) -> list[dict]:
    return [
        j
        for j in jobs(admin_engine, task="send_email")
        if j["args"]["message_id"] == str(message_id) and (status is None or j["status"] == status)
    ]


def kept_messages(app_sessions, database, admin_engine, world) -> list:
    """An engagement sent and accepted in org A: the work request (to contractor X's user) and the
    acceptance (to the project owner), kept by the worker without an API key."""
    active_engagement(app_sessions, world, title="Outbox test")
    run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)
    rows = messages_of(admin_engine, world.org_a)
    assert sorted(m.event for m in rows) == ["engagement.work_request_accepted", "engagement.work_request_sent"]
    assert {m.status for m in rows} == {"kept"}
    return rows


def invited(admin_client, world, admin_engine, local: str = "newbie", org_id=None):
    """An invitation written through the members page (of the admin's organization): its message, queued."""
    email = f"{local}-{world.suffix}@example.com"
    assert invite(admin_client, email=email, name="Nina Newbie", role="finance").status_code == 303
    (row,) = [m for m in messages_of(admin_engine, org_id or world.org_a) if m.recipient == email]
    return row


def table_rows(html: str) -> list[str]:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S) if body else []


def cells(row: str) -> list[str]:
    """A table row's cells as text, whitespace collapsed."""
    return [
        " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def resend(client, message_id):
    return client.post(f"/admin/outbox/{message_id}/resend", data={"csrf_token": csrf_token(client, "/notifications/")})


@pytest.fixture
def admin(app, login, world):
    return signed_in(app, login, world.admin)


# --- who may look -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "finance", "contractor_x_user"])
def test_only_admins_may_open_the_outbox(app, login, world, admin_engine, role):
    row = invited(signed_in(app, login, world.admin), world, admin_engine)
    person = signed_in(app, login, getattr(world, role))
    for path in ("/admin/outbox/", f"/admin/outbox/{row.id}", f"/admin/outbox/{row.id}/html"):
        assert person.get(path).status_code == 403, path
    assert resend(person, row.id).status_code == 403
    assert message(admin_engine, row.id).status == "queued"
    assert audit_events(admin_engine, world.org_a, "email.requeued") == []
    nav = person.get("/").get_data(as_text=True)
    assert 'href="/admin/outbox/"' not in nav


def test_signed_out_visitors_are_sent_to_sign_in(client, world, app, login, admin_engine):
    row = invited(signed_in(app, login, world.admin), world, admin_engine)
    for path in ("/admin/outbox/", f"/admin/outbox/{row.id}", f"/admin/outbox/{row.id}/html"):
        response = client.get(path)
        assert response.status_code in (302, 303) and "/login" in response.headers["Location"], path


def test_the_admin_menu_links_the_outbox(admin):
    assert 'href="/admin/outbox/"' in admin.get("/").get_data(as_text=True)


# --- the list -------------------------------------------------------------------------------------------


def test_the_outbox_lists_the_organizations_messages_with_status_and_attempts(
    admin, app_sessions, database, admin_engine, world
):
    kept = kept_messages(app_sessions, database, admin_engine, world)
    response = admin.get("/admin/outbox/")
    assert response.status_code == 200
    rows = table_rows(response.get_data(as_text=True))
    assert len(rows) == 2
    for m in kept:
        (row,) = [r for r in rows if f'href="/admin/outbox/{m.id}"' in r]
        _written, to, subject, event, status, attempts = cells(row)
        words = {
            "engagement.work_request_accepted": "Work request accepted",
            "engagement.work_request_sent": "Work request sent",
        }
        assert (to, subject, event, status, attempts) == (
            m.recipient,
            m.subject,
            words[m.event],
            "Kept (not sent)",
            "0",
        )


def test_the_outbox_filters_by_status_and_by_event(admin, app_sessions, database, admin_engine, world):
    kept = kept_messages(app_sessions, database, admin_engine, world)
    invitation = invited(admin, world, admin_engine)
    with resend_stub() as stub:
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
    assert len(stub.deliveries) == 1 and message(admin_engine, invitation.id).status == "sent"

    def listed(query: str) -> set[str]:
        response = admin.get(f"/admin/outbox/{query}")
        assert response.status_code == 200
        return {
            re.search(r'href="/admin/outbox/([0-9a-f-]{36})"', r).group(1)
            for r in table_rows(response.get_data(as_text=True))
        }

    assert listed("") == {str(m.id) for m in kept} | {str(invitation.id)}
    assert listed("?status=sent") == {str(invitation.id)}
    assert listed("?status=kept") == {str(m.id) for m in kept}
    assert listed("?event=invite") == {str(invitation.id)}
    assert listed("?event=engagement.work_request_sent") == {
        str(m.id) for m in kept if m.event == "engagement.work_request_sent"
    }
    sent_row = table_rows(admin.get("/admin/outbox/?status=sent").get_data(as_text=True))[0]
    assert cells(sent_row)[4:] == ["Sent", "1"]

    page = admin.get("/admin/outbox/?status=kept").get_data(as_text=True)
    assert re.search(r'<option value="kept" selected>Kept \(not sent\) \(2\)</option>', page)
    assert re.search(r'<option value="sent"\s*>Sent \(1\)</option>', page)
    assert re.search(r'<option value="invite"\s*>Invitation</option>', page)  # in words (issue 22)

    empty = admin.get("/admin/outbox/?status=kept&event=invite").get_data(as_text=True)
    assert table_rows(empty) == [] and "No message matches these filters." in empty


def test_an_outbox_with_no_messages_says_so(admin):
    response = admin.get("/admin/outbox/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert table_rows(html) == [] and "No emails yet." in html


def test_the_outbox_never_lists_another_organizations_messages(
    admin, app, login, app_sessions, database, admin_engine, world
):
    admin_b = signed_in(app, login, world.admin_b)
    theirs = invited(admin_b, world, admin_engine, "theirs", org_id=world.org_b)
    mine = invited(admin, world, admin_engine, "mine")
    html = admin.get("/admin/outbox/").get_data(as_text=True)
    assert str(mine.id) in html and str(theirs.id) not in html and theirs.recipient not in html


# --- one message ----------------------------------------------------------------------------------------


def test_the_message_page_shows_recipient_subject_text_and_a_sandboxed_preview(
    admin, app_sessions, database, admin_engine, world
):
    kept = kept_messages(app_sessions, database, admin_engine, world)
    (m,) = [k for k in kept if k.event == "engagement.work_request_sent"]
    response = admin.get(f"/admin/outbox/{m.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"<h1>{html_lib.escape(m.subject, quote=False)}</h1>" in html
    assert f"To {m.recipient}" in html and m.recipient == world.contractor_x_user.email
    assert "Kept (not sent)" in html and NO_API_KEY in html
    pre = re.search(r'<pre class="email-text">(.*?)</pre>', html, re.S)
    assert pre and html_lib.unescape(pre.group(1)) == m.text
    assert "Review the work request: http://backoffice.test/engagements/" in m.text
    frame = re.search(r"<iframe\b[^>]*>", html).group(0)
    assert re.search(r"\bsandbox\b", frame) and f'src="/admin/outbox/{m.id}/html"' in frame
    assert f'action="/admin/outbox/{m.id}/resend"' in html and "Send again" in html


def test_the_preview_is_the_html_body_under_a_sandbox_that_only_this_site_may_frame(
    admin, app_sessions, database, admin_engine, world
):
    (m, _) = kept_messages(app_sessions, database, admin_engine, world)
    response = admin.get(f"/admin/outbox/{m.id}/html")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.get_data(as_text=True) == m.html
    csp = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
    assert "sandbox" in csp
    assert "frame-ancestors 'self'" in csp
    assert "default-src 'none'" in csp
    assert not any(d.startswith("script-src") for d in csp)
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_a_failed_message_shows_resends_reason_and_can_be_sent_again(admin, world, admin_engine, database):
    row = invited(admin, world, admin_engine)
    with resend_stub() as stub:
        stub.fail_next(422, "validation_error", "The to address is not valid.")
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        failed = message(admin_engine, row.id)
        assert (failed.status, failed.attempts) == ("failed", 1)
        html = admin.get(f"/admin/outbox/{row.id}").get_data(as_text=True)
        assert "Failed" in html and "The to address is not valid." in html and "Send again" in html

        response = resend(admin, row.id)
        assert response.status_code == 303 and response.headers["Location"] == f"/admin/outbox/{row.id}"
        assert message(admin_engine, row.id).status == "queued"
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
    sent = message(admin_engine, row.id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)
    assert [d["to"] for d in stub.deliveries] == [[row.recipient]]  # delivered once
    assert stub.requests[-1].headers["idempotency-key"] == f"email-message/{row.id}"


# --- send again -----------------------------------------------------------------------------------------


def test_sending_a_kept_message_again_requeues_it_and_the_worker_keeps_it_again(
    admin, app_sessions, database, admin_engine, world
):
    (m, other) = kept_messages(app_sessions, database, admin_engine, world)
    response = resend(admin, m.id)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/outbox/{m.id}"
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert f"The message to {m.recipient} is queued to be sent again." in flashes(page)
    assert "Queued" in page and "Send again" not in page  # waiting: no second button

    assert message(admin_engine, m.id).status == "queued"
    assert message(admin_engine, other.id).status == "kept"
    (job,) = send_email_jobs(admin_engine, m.id, status="todo")
    assert job["args"]["org_id"] == str(world.org_a)
    (event,) = audit_events(admin_engine, world.org_a, "email.requeued")
    assert event.actor_user_id == world.admin.id
    assert (event.entity_type, event.entity_id) == ("email_message", str(m.id))
    assert event.data == {"event": m.event, "recipient": m.recipient, "was": NO_API_KEY}

    run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)
    again = message(admin_engine, m.id)
    assert (again.status, again.last_error, again.attempts) == ("kept", NO_API_KEY, 0)
    assert send_email_jobs(admin_engine, m.id, status="todo") == []


def test_a_sent_message_is_never_sent_again(admin, world, admin_engine, database):
    row = invited(admin, world, admin_engine)
    with resend_stub() as stub:
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        sent = message(admin_engine, row.id)
        assert sent.status == "sent" and sent.provider_id
        page = admin.get(f"/admin/outbox/{row.id}").get_data(as_text=True)
        assert "Send again" not in page and sent.provider_id in page
        jobs_before = send_email_jobs(admin_engine, row.id)

        response = resend(admin, row.id)
        assert response.status_code == 409
        assert f"This message was sent already ({sent.provider_id}); it is never sent twice." in html_lib.unescape(
            response.get_data(as_text=True)
        )
        assert message(admin_engine, row.id) == sent
        assert send_email_jobs(admin_engine, row.id) == jobs_before
        assert audit_events(admin_engine, world.org_a, "email.requeued") == []
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
    assert len(stub.deliveries) == 1


def test_a_message_still_waiting_is_not_queued_twice(admin, world, admin_engine):
    row = invited(admin, world, admin_engine)
    assert message(admin_engine, row.id).status == "queued"
    response = resend(admin, row.id)
    assert response.status_code == 409
    assert "This message is waiting to be sent already." in response.get_data(as_text=True)
    assert len(send_email_jobs(admin_engine, row.id)) == 1
    assert audit_events(admin_engine, world.org_a, "email.requeued") == []


def test_sending_again_needs_the_csrf_token(admin, app_sessions, database, admin_engine, world):
    (m, _) = kept_messages(app_sessions, database, admin_engine, world)
    response = admin.post(f"/admin/outbox/{m.id}/resend", data={})
    assert response.status_code == 400
    assert message(admin_engine, m.id).status == "kept"
    assert send_email_jobs(admin_engine, m.id, status="todo") == []


# --- other organizations, other accounts ------------------------------------------------------------------


def test_another_organizations_message_is_404_everywhere_and_stays_as_it_was(
    admin, app, login, admin_engine, world, database
):
    admin_b = signed_in(app, login, world.admin_b)
    row = invited(admin_b, world, admin_engine, "theirs", org_id=world.org_b)
    run_jobs(database, admin_engine, org_ids=[world.org_b], mailer=OFFLINE)
    before = message(admin_engine, row.id)
    assert before.status == "kept"
    for path in (f"/admin/outbox/{row.id}", f"/admin/outbox/{row.id}/html"):
        response = admin.get(path)
        assert response.status_code == 404, path
        assert "/invite/" not in response.get_data(as_text=True)
    assert resend(admin, row.id).status_code == 404
    assert message(admin_engine, row.id) == before
    assert send_email_jobs(admin_engine, row.id, status="todo") == []
    assert admin_b.get(f"/admin/outbox/{row.id}").status_code == 200  # its own admin sees it


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "5f0c2a9e-8d41-4b7a-9c3e-2b1d6f7a8e90"])
def test_a_malformed_or_unknown_message_id_is_404(admin, bad_id):
    assert admin.get(f"/admin/outbox/{bad_id}").status_code == 404
    assert admin.get(f"/admin/outbox/{bad_id}/html").status_code == 404
    assert resend(admin, bad_id).status_code == 404


def _ask_for_reset(app, person, database, admin_engine):
    """Ask for a reset link; the worker writes the email (and keeps it: no API key)."""
    anonymous = app.test_client()
    response = anonymous.post(
        "/password/forgot", data={"email": person.email, "csrf_token": csrf_token(anonymous, "/password/forgot")}
    )
    assert response.status_code == 303
    run_jobs(database, admin_engine, user_ids=[person.id], mailer=OFFLINE)


def _reset_message(admin_engine, person):
    """The account's password reset email: an account message (account_messages), in no organization."""
    with admin_engine.connect() as conn:
        return conn.execute(
            text("select id, status from account_messages where recipient_user_id = :u"), {"u": person.id}
        ).one()


def test_a_password_reset_is_in_no_other_admins_outbox(app, login, admin_engine, world, database):
    _ask_for_reset(app, world.owner, database, admin_engine)  # a member of org A, not an admin
    reset = _reset_message(admin_engine, world.owner)
    for who in (world.admin, world.admin_b):
        admin = signed_in(app, login, who)
        assert admin.get(f"/admin/outbox/{reset.id}").status_code == 404
        assert admin.get(f"/admin/outbox/{reset.id}/html").status_code == 404
        assert resend(admin, reset.id).status_code == 404


def test_a_password_reset_is_never_listed_in_an_organizations_outbox(app, login, admin_engine, world, database):
    _ask_for_reset(app, world.admin, database, admin_engine)
    _ask_for_reset(app, world.owner, database, admin_engine)
    for who in (world.admin, world.admin_b):
        admin = signed_in(app, login, who)
        response = admin.get("/admin/outbox/")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "Reset your backoffice password" not in html and "password_reset" not in html


def test_an_admins_own_password_reset_is_not_shown_in_the_outbox_either(app, login, admin_engine, world, database):
    _ask_for_reset(app, world.admin, database, admin_engine)
    reset = _reset_message(admin_engine, world.admin)
    admin = signed_in(app, login, world.admin)
    assert admin.get(f"/admin/outbox/{reset.id}").status_code == 404
    assert admin.get(f"/admin/outbox/{reset.id}/html").status_code == 404


def test_sending_an_admins_own_kept_password_reset_again_does_not_strand_it(app, login, admin_engine, world, database):
    _ask_for_reset(app, world.admin, database, admin_engine)
    reset = _reset_message(admin_engine, world.admin)
    assert reset.status == "kept"
    admin = signed_in(app, login, world.admin)
    response = resend(admin, reset.id)
    if response.status_code == 404:  # refused outright: that is fine too
        assert _reset_message(admin_engine, world.admin).status == "kept"
        return
    run_jobs(database, admin_engine, org_ids=[world.org_a], user_ids=[world.admin.id], mailer=OFFLINE)
    assert _reset_message(admin_engine, world.admin).status == "kept"


def test_a_large_outbox_counts_each_status_up_to_a_thousand_and_pages_by_keys(admin, world, admin_engine):
    """An organization's outbox may hold hundreds of thousands of messages: each status's count stops at
    1,000 ("1000+"), and the list pages by keys, newest first, every message once."""
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into email_messages (org_id, event, recipient, subject, html, text, status, dedupe_key,"
                " created_at, provider_id, sent_at, attempts, last_error)"
                " select :o, 'engagement.work_request_sent', 'c' || g || '@example.com', 'Message ' || g, '<p>x</p>',"
                " 'x', case when g <= 1001 then 'sent' else 'failed' end, 'bulk-' || g,"
                " now() - make_interval(secs => g), case when g <= 1001 then 're_' || g end,"
                " case when g <= 1001 then now() end, 1, case when g > 1001 then 'refused' end"
                " from generate_series(1, 1003) g"
            ),
            {"o": world.org_a},
        )
    html = admin.get("/admin/outbox/").get_data(as_text=True)
    assert re.search(r'<option value="sent"\s*>Sent \(1000\+\)</option>', html)
    assert re.search(r'<option value="failed"\s*>Failed \(2\)</option>', html)
    seen, query = [], ""
    while True:
        page = admin.get(f"/admin/outbox/{query}").get_data(as_text=True)
        seen += [c[2] for c in (cells(r) for r in table_rows(page))]
        older = re.search(r'<a href="([^"]+)" rel="next">Older →</a>', page)
        if not older:
            break
        query = older.group(1).replace("&amp;", "&").removeprefix("/admin/outbox/")
    assert seen == [f"Message {g}" for g in range(1, 1004)]
    failed = admin.get("/admin/outbox/?status=failed").get_data(as_text=True)
    assert [cells(r)[2] for r in table_rows(failed)] == ["Message 1002", "Message 1003"]
