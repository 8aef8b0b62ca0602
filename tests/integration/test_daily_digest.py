"""The daily digest (issue 22, item 10; services/digests.py): a person who chose one email a day gets every in-app
notice at once, while their emails are held in the outbox ("held for the daily digest") and go as one email at
08:00 on their own clock, listing each held message's subject with its link. Never lost, never sent twice.

Events go through the real services and the real worker; the digest is run as the organization's worker with a
chosen ``now`` (no clock is waited for), and the database is read back as the owner role.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime

import pytest
from kit.engagements import owner_query
from kit.jobs import BASE_URL, run_jobs
from kit.money import approved_invoices, party, pay
from sqlalchemy import text

from backoffice.config import load_settings
from backoffice.jobs import runtime, tasks
from backoffice.queries.notifications import OUTBOX_STATUSES
from backoffice.services import digests
from backoffice.services.notifications import worker_actor

# 08:00 on Monday 7 December 2026 in Tokyo (UTC+9) is 23:00 on Sunday the 6th in UTC.
TOKYO_08_00 = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
TOKYO_07_59 = datetime(2026, 12, 6, 22, 59, tzinfo=UTC)


@pytest.fixture
def worker(database):
    return runtime.configure(database.worker_url, dataclasses.replace(load_settings(), base_url=BASE_URL))


def choose(admin_engine, person, notify: str, time_zone: str = "Asia/Tokyo") -> None:
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "insert into user_preferences (user_id, time_zone, notify) values (:u, :z, :n)"
                " on conflict (user_id) do update set time_zone = :z, notify = :n"
            ),
            {"u": person.id, "z": time_zone, "n": notify},
        )


def emails_to(admin_engine, org_id, person) -> list[dict]:
    return owner_query(
        admin_engine,
        "select * from email_messages where org_id = :o and recipient = :r order by created_at, id",
        o=org_id,
        r=person.email,
    )


def send_jobs_for(admin_engine, message_ids) -> list[dict]:
    return owner_query(
        admin_engine,
        "select args from procrastinate.procrastinate_jobs where task_name = 'send_email'"
        " and args->>'message_id' = any(:ids)",
        ids=[str(i) for i in message_ids],
    )


def digest(org_id, now: datetime) -> int:
    with runtime.worker_session(org_id) as session:
        return digests.send_daily_digests(session, worker_actor(org_id), now, base_url=BASE_URL)


@pytest.fixture
def two_payments(world, act_as, admin_engine, database, worker):
    """Contractor X's user chose the daily digest (in Tokyo); two payments recorded alone, one run each."""
    _, (a, b) = approved_invoices(act_as, admin_engine, party(world))
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    choose(admin_engine, world.contractor_x_user, "daily")
    before = {m["id"] for m in emails_to(admin_engine, world.org_a, world.contractor_x_user)}
    pay(act_as, world.finance, world.org_a, a["id"], reference="CHK 1")
    pay(act_as, world.finance, world.org_a, b["id"], reference="CHK 2")
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    return [a, b], before


def test_a_daily_person_gets_the_notice_at_once_and_the_email_held_in_the_outbox(world, admin_engine, two_payments):
    (a, b), before = two_payments
    held = [m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["id"] not in before]
    assert [(m["status"], m["subject"]) for m in held] == [
        ("held", f"Paid: {a['invoice_number']} — $900.00"),
        ("held", f"Paid: {b['invoice_number']} — $1,800.00"),
    ]
    assert all(m["link"].startswith("/documents/remittance-advice/") for m in held)
    assert send_jobs_for(admin_engine, [m["id"] for m in held]) == []  # not sent on its own
    notices = owner_query(
        admin_engine,
        "select title from notifications where user_id = :u and event = 'payment.run' order by created_at",
        u=world.contractor_x_user.id,
    )
    assert [n["title"] for n in notices] == [m["subject"] for m in held]
    assert OUTBOX_STATUSES["held"] == "Held for the daily digest"
    # The owner, who chose nothing, is emailed each event as before.
    assert {m["status"] for m in emails_to(admin_engine, world.org_a, world.owner) if m["event"] == "payment.run"} == {
        "kept"
    }


def test_the_digest_goes_at_eight_on_the_persons_clock_listing_each_subject_with_its_link(
    world, admin_engine, two_payments
):
    _, before = two_payments
    assert digest(world.org_a, TOKYO_07_59) == 0
    assert digest(world.org_a, TOKYO_08_00) == 1

    mine = [m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["id"] not in before]
    (sent,) = [m for m in mine if m["event"] == "notifications.digest"]
    assert sent["subject"] == f"Your daily digest from Org A {world.suffix}: 2 messages"
    assert sent["dedupe_key"] == f"notifications.digest:2026-12-07:{world.contractor_x_user.id}"
    carried = [m for m in mine if m["event"] == "payment.run"]
    assert {(m["status"], m["digest_id"]) for m in carried} == {("digested", sent["id"])}
    for m in carried:
        assert m["subject"] in sent["text"] and f"{BASE_URL}{m['link']}" in sent["text"]
    assert len(send_jobs_for(admin_engine, [sent["id"]])) == 1
    # Later the same day: nothing new. The next morning, with nothing held: nothing.
    assert digest(world.org_a, TOKYO_08_00.replace(hour=23, minute=59)) == 0
    assert digest(world.org_a, TOKYO_08_00.replace(day=7)) == 0
    assert len([m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["id"] not in before]) == 3


def test_a_message_held_after_the_days_digest_waits_for_the_next_days(
    world, act_as, admin_engine, database, two_payments
):
    assert digest(world.org_a, TOKYO_08_00) == 1
    _, (c,) = approved_invoices(act_as, admin_engine, party(world), ("500.00",), title="Fence")
    pay(act_as, world.finance, world.org_a, c["id"], reference="CHK 3")
    run_jobs(database, admin_engine, org_ids=[world.org_a])
    assert digest(world.org_a, TOKYO_08_00.replace(hour=23, minute=30)) == 0  # today's went already
    late = [m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["status"] == "held"]
    assert f"Paid: {c['invoice_number']} — $450.00" in [m["subject"] for m in late]  # with the Fence's approval's
    assert digest(world.org_a, TOKYO_08_00.replace(day=7)) == 1  # 08:00 on Tuesday in Tokyo
    assert [m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["status"] == "held"] == []


def test_two_workers_running_the_digest_at_once_write_one(world, admin_engine, two_payments):
    start = threading.Barrier(2)
    results: list[int] = []

    def run() -> None:
        start.wait()
        results.append(digest(world.org_a, TOKYO_08_00))

    workers = [threading.Thread(target=run) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(results) == [0, 1]
    digests_sent = [
        m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["event"] == "notifications.digest"
    ]
    assert len(digests_sent) == 1
    carried = owner_query(
        admin_engine,
        "select status, digest_id from email_messages where org_id = :o and event = 'payment.run' and recipient = :r",
        o=world.org_a,
        r=world.contractor_x_user.email,
    )
    assert {(m["status"], m["digest_id"]) for m in carried} == {("digested", digests_sent[0]["id"])}


def test_a_held_message_is_never_sent_on_its_own_nor_sent_again_from_the_outbox(
    world, act_as, admin_engine, two_payments
):
    from kit.engagements import sign_in

    from backoffice.errors import Conflict
    from backoffice.services.notifications import requeue

    (held, _) = [m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["status"] == "held"]
    session, admin = sign_in(act_as, world.admin, world.org_a)
    with pytest.raises(Conflict, match="held for its reader's daily digest"):
        requeue(session, admin, held["id"])


def test_the_hourly_task_sends_the_digests_of_every_organization(world, admin_engine, two_payments):
    tasks.daily_digests(timestamp=int(TOKYO_08_00.timestamp()))
    (sent,) = [
        m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["event"] == "notifications.digest"
    ]
    assert sent["status"] == "queued"


def test_a_person_in_los_angeles_gets_theirs_at_eight_there(world, admin_engine, two_payments):
    """08:00 on Sunday 6 December in Los Angeles (PST, UTC-8) is 16:00 UTC, hours before Tokyo's Monday 08:00."""
    choose(admin_engine, world.contractor_x_user, "daily", "America/Los_Angeles")
    assert digest(world.org_a, datetime(2026, 12, 6, 15, 59, tzinfo=UTC)) == 0
    assert digest(world.org_a, datetime(2026, 12, 6, 16, 0, tzinfo=UTC)) == 1
    (sent,) = [
        m for m in emails_to(admin_engine, world.org_a, world.contractor_x_user) if m["event"] == "notifications.digest"
    ]
    assert sent["dedupe_key"] == f"notifications.digest:2026-12-06:{world.contractor_x_user.id}"
