"""The admins' daily digest (issue 16, item 7; DESIGN.md section 6): every day, quiet or not, each active
admin gets the organization's audit chain head, saying what it is for, and what the trail recorded the
day before. Unlike the finance digest it never skips a day, so the head leaves the database daily.

Called as the organization's worker (``jobs.runtime.worker_session``), and the procrastinate task as the
worker calls it. "Yesterday" is the day before the digest's ``day``: the tests send tomorrow's digest to
count what they did today. (That the head it carries is the current one, and that `audit verify` notices
it lost: test_audit_heads.py.)
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

import pytest
from kit.engagements import owner_query, sign_in
from kit.jobs import BASE_URL
from kit.money import active_engagement, approve, approved_invoices, decide_as, party, pay, set_org, submit
from sqlalchemy import text

from backoffice.config import load_settings
from backoffice.db import make_session_factory
from backoffice.domain.roles import Role
from backoffice.jobs import runtime, tasks
from backoffice.services import audit, bootstrap, members, notifications
from backoffice.services.notifications import worker_actor


@pytest.fixture
def worker(database):
    return runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))


def today() -> date:
    return datetime.now(UTC).date()


def digest(org_id, day: date) -> int:
    with runtime.worker_session(org_id) as session:
        return notifications.send_admin_digest(session, worker_actor(org_id), day, base_url=BASE_URL)


def messages(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and event = 'admin.digest' order by recipient, created_at",
        o=org_id,
    )


def notices(admin_engine, org_id) -> list[dict]:
    return owner_query(
        admin_engine, "select * from notifications where org_id = :o and event = 'admin.digest'", o=org_id
    )


def fact(message: dict, label: str) -> str:
    """The value the text email gives ``label`` (a 'Label: value' line)."""
    (value,) = [line.split(": ", 1)[1] for line in message["text"].splitlines() if line.startswith(f"{label}: ")]
    return value


def add_member(admin_engine, password_hash, world, local: str, role: Role, org_id=None):
    with make_session_factory(admin_engine)() as session:
        user = bootstrap.create_user(
            session,
            email=f"{local}-{world.suffix}@example.com",
            name=local.title(),
            password_hash=password_hash,
            org_id=org_id or world.org_a,
            role=role,
        )
        session.commit()
        return user.id, user.email


def events_on(admin_engine, org_id, day: date) -> int:
    """How many events the organization's trail holds from ``day``'s UTC midnight to the next."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    (row,) = owner_query(
        admin_engine,
        "select count(*) as n from audit_events where org_id = :o and occurred_at >= :s and occurred_at < :e",
        o=org_id,
        s=start,
        e=start + timedelta(days=1),
    )
    return row["n"]


# --- who, and how often ----------------------------------------------------------------------------


def test_every_active_admin_gets_it_and_nobody_else(world, act_as, admin_engine, worker, password_hash):
    second_id, second_email = add_member(admin_engine, password_hash, world, "second-admin", Role.ADMIN)
    gone_id, _ = add_member(admin_engine, password_hash, world, "gone-admin", Role.ADMIN)
    with admin_engine.begin() as conn:
        conn.execute(text("update users set is_active = false where id = :u"), {"u": gone_id})
    session, admin = sign_in(act_as, world.admin, world.org_a)
    pending = members.invite_member(
        session, admin, email=f"pending-admin-{world.suffix}@example.com", name="Pat Pending", role="admin"
    )

    assert digest(world.org_a, today()) == 2

    sent = messages(admin_engine, world.org_a)
    # Not the owner, finance, the contractors' users, the deactivated admin or the one still invited.
    assert sorted((m["recipient"], m["recipient_user_id"]) for m in sent) == sorted(
        [(world.admin.email, world.admin.id), (second_email, second_id)]
    )
    assert pending.user_id not in {m["recipient_user_id"] for m in sent}
    assert {n["user_id"] for n in notices(admin_engine, world.org_a)} == {world.admin.id, second_id}
    assert all(n["url"] == "/audit/" for n in notices(admin_engine, world.org_a))
    assert messages(admin_engine, world.org_b) == []  # org B's admin hears about org B only
    jobs = owner_query(
        admin_engine,
        "select args from procrastinate.procrastinate_jobs where task_name = 'send_email'"
        " and args->>'message_id' = any(:ids)",
        ids=[str(m["id"]) for m in sent],
    )
    assert len(jobs) == 2


def test_one_digest_a_day_however_often_it_runs(world, admin_engine, worker):
    day = today()
    assert digest(world.org_a, day) == 1
    assert digest(world.org_a, day) == 0

    (m,) = messages(admin_engine, world.org_a)
    assert m["dedupe_key"] == f"admin.digest:{day.isoformat()}:{world.admin.id}"
    assert len(notices(admin_engine, world.org_a)) == 1
    assert digest(world.org_a, day + timedelta(days=1)) == 1  # the next day has its own
    assert len(messages(admin_engine, world.org_a)) == 2


def test_it_is_sent_on_a_quiet_day_with_no_payment_due(world, admin_engine, worker):
    day = today() + timedelta(days=10)  # nothing recorded the day before, nothing due

    with runtime.worker_session(world.org_a) as session:
        assert notifications.send_finance_digest(session, worker_actor(world.org_a), day, base_url=BASE_URL) == 0
    assert digest(world.org_a, day) == 1

    (m,) = messages(admin_engine, world.org_a)
    assert m["subject"].startswith("Daily digest, ")
    assert "0 audit events yesterday" in m["subject"]
    assert "Nothing was recorded in the trail yesterday" in m["text"]
    for label in ("Work reviewed", "Payments authorized", "Payments recorded"):
        assert fact(m, label) == "none"
    assert fact(m, "Audit events recorded") == "0"


# --- what it says ----------------------------------------------------------------------------------


def test_the_text_says_what_the_head_is_for(world, admin_engine, worker):
    digest(world.org_a, today())

    (m,) = messages(admin_engine, world.org_a)
    lead = m["text"].split("\n\n")[2]
    assert lead.startswith("Keep this email.")
    assert "pasting that line under “Verify the chain” on the audit page" in lead
    assert "“backoffice audit verify --heads FILE”) checks that the trail still holds this event" in lead
    assert "if anyone cut the newest events from the trail, the check fails and names this head" in lead
    assert "Keep this email." in m["html"] and "cut the newest events" in m["html"]
    assert "Audit trail head when this was sent (organization, event, hash):" in m["text"]
    assert f"{BASE_URL}/audit/" in m["text"] and f'href="{BASE_URL}/audit/"' in m["html"]


def test_it_counts_what_the_trail_recorded_the_day_before(world, act_as, admin_engine, worker):
    p = party(world)
    _, (m1, m2, m3) = active_engagement(act_as, admin_engine, p, ("100.00", "200.00", "300.00"))
    first = approve(act_as, admin_engine, p, m1)  # net 90.00 (10 % retainage)
    approve(act_as, admin_engine, p, m2)  # net 180.00
    disputed = submit(act_as, p, m3)
    decide_as(act_as, world.owner, world.org_a, m3, disputed.id, "dispute", reason="Photos missing.")
    pay(act_as, world.finance, world.org_a, first["id"])
    day = today() + timedelta(days=1)

    assert digest(world.org_a, day) == 1

    (m,) = messages(admin_engine, world.org_a)
    recorded = events_on(admin_engine, world.org_a, today())
    assert recorded > 6
    assert fact(m, "Audit events recorded") == str(recorded)
    assert f"{recorded} audit events yesterday" in m["subject"]
    assert fact(m, "Work reviewed") == "2 approved, 0 partially approved, 1 disputed"
    assert fact(m, "Payments authorized") == "2 — $270.00"
    assert fact(m, "Payments recorded") == "1 — $90.00"
    # The day after: none of it.
    assert digest(world.org_a, day + timedelta(days=1)) == 1
    later = messages(admin_engine, world.org_a)[-1]
    assert "0 audit events yesterday" in later["subject"]
    assert fact(later, "Payments recorded") == "none"


def test_the_span_counted_is_exactly_the_events_recorded_in_it(world, act_as, admin_engine, as_worker):
    session, admin = sign_in(act_as, world.admin, world.org_a)
    for i in range(5):
        audit.record(session, admin, "test.recorded", "thing", f"span-{i}")
        session.commit()
    chain = owner_query(
        admin_engine, "select seq, occurred_at from audit_events where org_id = :o order by seq", o=world.org_a
    )
    start, end = chain[-4]["occurred_at"], chain[-2]["occurred_at"]  # from the 4th newest up to the 2nd newest

    tallies = audit.recorded_between(as_worker(world.org_a), world.org_a, start, end)

    assert [(t.action, t.events) for t in tallies] == [("test.recorded", 2)]


# --- the daily task -------------------------------------------------------------------------------


def timestamp_of(day: date) -> int:
    return int(datetime.combine(day, time(7, 0), tzinfo=UTC).timestamp())


def test_the_daily_task_sends_each_organizations_admins_their_own_digest(world, act_as, admin_engine, worker):
    set_org(admin_engine, world.org_b, segregation_of_duties=False)
    approved_invoices(act_as, admin_engine, party(world, "z"), ("500.00",))  # org B: net €450.00
    day = today() + timedelta(days=1)

    tasks.admin_digest(timestamp=timestamp_of(day))

    (a,) = messages(admin_engine, world.org_a)
    (b,) = messages(admin_engine, world.org_b)
    assert (a["recipient"], b["recipient"]) == (world.admin.email, world.admin_b.email)
    assert a["dedupe_key"] == f"admin.digest:{day.isoformat()}:{world.admin.id}"
    assert fact(a, "Payments authorized") == "none"
    assert fact(b, "Payments authorized") == "1 — €450.00"
    assert fact(b, "Work reviewed") == "1 approved, 0 partially approved, 0 disputed"
    assert str(world.org_a) in a["text"] and str(world.org_b) not in a["text"]
    assert str(world.org_b) in b["text"] and str(world.org_a) not in b["text"]
