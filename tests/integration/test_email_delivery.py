"""Sending the outbox through Resend, exactly once (DESIGN.md section 6; services/email_delivery.py).

The real ``resend`` SDK talks to a local stand-in of Resend's API (tests/resend_stub.py) that records
every request and honours ``Idempotency-Key`` the way Resend does. Messages are written by the real
``store_message`` as their organization's worker, and sent by the real procrastinate worker
(``run_jobs``) or by ``deliver`` itself where the test needs one attempt in isolation. Outcomes are
read back as the owner role.
"""

from __future__ import annotations

import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import resend
from kit.engagements import owner_query
from kit.jobs import OFFLINE, jobs, online, run_jobs
from kit.resend_stub import resend_stub
from kit.signin import act
from procrastinate.jobs import Job
from sqlalchemy import text

from backoffice.jobs import queue
from backoffice.jobs.tasks import EMAIL_RETRY
from backoffice.services.email_delivery import (
    NO_API_KEY,
    Outcome,
    TransientEmailError,
    deliver,
)
from backoffice.services.notification_events import Person
from backoffice.services.notifications import Email, store_message

SENDER = "backoffice <notices@example.com>"  # jobs_kit's mailers send as this
SUBJECT = "Ready for review: Roof part 1 (Contractor X)"
HTML = "<p>Hello Omar,</p><p>Contractor X marked “Roof part 1” complete.</p>"
TEXT = "Hello Omar,\n\nContractor X marked “Roof part 1” complete.\n"


# --- helpers ------------------------------------------------------------------------------------------


def new_message(as_worker, org_id, to, *, event: str = "milestone.submitted") -> uuid.UUID:
    """One outbox message to ``to``, stored by the organization's worker (which also enqueues its sending)."""
    session = as_worker(org_id)
    message_id = store_message(
        session,
        org_id=org_id,
        event=event,
        to=Person(to.id, to.email, to.name),
        email=Email(SUBJECT, HTML, TEXT),
        key=f"test:{uuid.uuid4()}",
    )
    session.commit()
    assert message_id is not None
    return message_id


def message(admin_engine, message_id) -> dict:
    (row,) = owner_query(admin_engine, "select * from email_messages where id = :i", i=message_id)
    return row


def send_jobs(admin_engine, message_id) -> list[dict]:
    return [j for j in jobs(admin_engine, task="send_email") if j["args"]["message_id"] == str(message_id)]


def deliver_as_worker(as_worker, org_id, message_id, mailer, **kwargs) -> Outcome:
    return deliver(as_worker(org_id), message_id, mailer, **kwargs)


@contextmanager
def silent_port():
    """A port that accepts connections and never answers: every request to it times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def closed_port() -> str:
    """A port nothing listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def send_job_tried(attempts: int) -> Job:
    """A send_email job as procrastinate hands it to its retry strategy after ``attempts`` tries."""
    return Job(id=1, queue="default", lock=None, queueing_lock=None, task_name="send_email", attempts=attempts)


@pytest.fixture
def omar(world):
    return world.owner


# --- what Resend receives -----------------------------------------------------------------------------


def test_the_worker_sends_the_message_to_resend_with_its_idempotency_key(
    world, as_worker, admin_engine, database, omar
):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())

    assert len(stub.requests) == 1
    request = stub.requests[0]
    assert (request.method, request.path) == ("POST", "/emails")
    assert request.headers["idempotency-key"] == f"email-message/{message_id}"
    assert request.headers["authorization"] == "Bearer re_test_key"
    body = request.body
    assert body["from"] == SENDER
    assert body["to"] == [omar.email]
    assert (body["subject"], body["html"], body["text"]) == (SUBJECT, HTML, TEXT)
    assert {"name": "event", "value": "milestone_submitted"} in body["tags"]

    row = message(admin_engine, message_id)
    assert row["status"] == "sent"
    assert row["attempts"] == 1
    assert row["provider_id"] == stub.deliveries[0]["id"]
    assert row["sent_at"] is not None and row["last_error"] is None
    assert [j["status"] for j in send_jobs(admin_engine, message_id)] == ["succeeded"]


def test_without_an_api_key_the_message_is_kept_and_nothing_is_requested(
    world, as_worker, admin_engine, database, omar
):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=OFFLINE)

    assert stub.requests == []
    row = message(admin_engine, message_id)
    assert row["status"] == "kept"
    assert row["last_error"] == NO_API_KEY
    assert row["attempts"] == 0 and row["provider_id"] is None and row["sent_at"] is None


# --- retries: 5xx, 429, timeouts ----------------------------------------------------------------------


def test_a_server_error_is_retried_later_and_the_retry_delivers_once(world, as_worker, admin_engine, database, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(500, "application_error", "Resend is having a bad day")
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online(), due_now=True)

        row = message(admin_engine, message_id)
        assert row["status"] == "retrying"
        assert row["attempts"] == 1
        assert "500" in row["last_error"] and "Resend is having a bad day" in row["last_error"]
        assert row["provider_id"] is None
        (job,) = send_jobs(admin_engine, message_id)
        assert job["status"] == "todo" and job["attempts"] == 1
        assert job["scheduled_at"] > datetime.now(UTC)  # backing off, not run again at once
        assert stub.deliveries == []

        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online(), due_now=True)

    row = message(admin_engine, message_id)
    assert row["status"] == "sent"
    assert row["attempts"] == 2
    assert row["last_error"] is None
    assert len(stub.requests) == 2
    assert len(stub.deliveries) == 1
    assert row["provider_id"] == stub.deliveries[0]["id"]
    assert {r.headers["idempotency-key"] for r in stub.requests} == {f"email-message/{message_id}"}
    assert [j["status"] for j in send_jobs(admin_engine, message_id)] == ["succeeded"]


def test_a_refusal_fails_the_message_with_resends_reason_and_is_not_retried(
    world, as_worker, admin_engine, database, omar
):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(422, "validation_error", "Invalid `to` field. The email address needs to follow the format.")
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())  # nothing is waiting any more

    assert len(stub.requests) == 1
    row = message(admin_engine, message_id)
    assert row["status"] == "failed"
    assert row["attempts"] == 1
    assert "422" in row["last_error"]
    assert "Invalid `to` field" in row["last_error"]
    assert [(j["status"], j["attempts"]) for j in send_jobs(admin_engine, message_id)] == [
        ("succeeded", 1)
    ]  # one run, not retried


def test_a_rate_limit_is_retried(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(429, "rate_limit_exceeded", "Too many requests. You can only make 2 requests per second.")
        with pytest.raises(TransientEmailError):
            deliver_as_worker(as_worker, world.org_a, message_id, online())
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.SENT

    row = message(admin_engine, message_id)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert len(stub.deliveries) == 1


def test_a_rate_limit_leaves_the_message_retrying_with_the_reason(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(429, "rate_limit_exceeded", "Too many requests.")
        with pytest.raises(TransientEmailError):
            deliver_as_worker(as_worker, world.org_a, message_id, online())
    row = message(admin_engine, message_id)
    assert row["status"] == "retrying" and row["attempts"] == 1
    assert "429" in row["last_error"] and "Too many requests." in row["last_error"]


def test_a_connection_refused_counts_as_retryable(world, as_worker, admin_engine, omar, monkeypatch):
    message_id = new_message(as_worker, world.org_a, omar)
    monkeypatch.setattr(resend, "api_url", closed_port())
    with pytest.raises(TransientEmailError):
        deliver_as_worker(as_worker, world.org_a, message_id, online())
    row = message(admin_engine, message_id)
    assert row["status"] == "retrying"
    assert row["attempts"] == 1
    assert "HttpClientError" in row["last_error"]


def test_a_timeout_counts_as_retryable(world, as_worker, admin_engine, omar, monkeypatch):
    message_id = new_message(as_worker, world.org_a, omar)
    with silent_port() as url:
        monkeypatch.setattr(resend, "api_url", url)
        with pytest.raises(TransientEmailError):
            deliver_as_worker(as_worker, world.org_a, message_id, online(timeout_seconds=1))
    row = message(admin_engine, message_id)
    assert row["status"] == "retrying"
    assert row["attempts"] == 1
    assert "timed out" in row["last_error"].lower()


def test_the_last_attempt_gives_up_and_marks_the_message_failed(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(503, "application_error", "Service unavailable")
        outcome = deliver_as_worker(as_worker, world.org_a, message_id, online(), last_attempt=True)
    assert outcome is Outcome.FAILED
    row = message(admin_engine, message_id)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("Gave up after 1 attempts.")
    assert "Service unavailable" in row["last_error"]


def test_the_workers_last_allowed_attempt_gives_up_instead_of_retrying(world, as_worker, admin_engine, database, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(500, "application_error", "Down")
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        # As if the job had used all but one of the attempts its retry strategy allows: this try is the last.
        with admin_engine.begin() as conn:
            conn.execute(
                text("update procrastinate.procrastinate_jobs set attempts = :n where id = :id"),
                {"n": EMAIL_RETRY.max_attempts - 1, "id": send_jobs(admin_engine, message_id)[0]["id"]},
            )
        stub.fail_next(500, "application_error", "Still down")
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())

    assert len(stub.requests) == 2
    row = message(admin_engine, message_id)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("Gave up after 2 attempts.")
    assert "Still down" in row["last_error"]
    assert [j["status"] for j in send_jobs(admin_engine, message_id)] == ["succeeded"]


def test_a_message_resend_keeps_refusing_is_retried_with_growing_waits_and_given_up_within_an_hour():
    def wait_after(attempts: int) -> int:
        before = datetime.now(UTC)
        decision = EMAIL_RETRY.get_retry_decision(exception=TransientEmailError("down"), job=send_job_tried(attempts))
        return round((decision.retry_at - before).total_seconds())

    waits = [wait_after(attempts) for attempts in range(EMAIL_RETRY.max_attempts - 1)]
    assert waits == [13, 19, 37, 91, 253, 739, 2197]  # the schedule jobs/tasks.py and the README promise
    assert 45 * 60 <= sum(waits) <= 60 * 60


# --- exactly once -------------------------------------------------------------------------------------


def test_delivering_a_sent_message_again_sends_nothing(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.SENT
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.NOTHING_TO_DO
    assert len(stub.requests) == 1
    assert message(admin_engine, message_id)["attempts"] == 1


def test_a_send_job_that_runs_twice_sends_once(world, as_worker, admin_engine, database, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())
        session = as_worker(world.org_a)
        queue.send_email(session, message_id, org_id=world.org_a)  # the same job, enqueued again
        session.commit()
        run_jobs(database, admin_engine, org_ids=[world.org_a], mailer=online())

    assert [j["status"] for j in send_jobs(admin_engine, message_id)] == ["succeeded", "succeeded"]
    assert len(stub.requests) == 1
    assert len(stub.deliveries) == 1
    assert message(admin_engine, message_id)["attempts"] == 1


def test_two_workers_delivering_the_same_message_at_once_send_it_once(
    world, worker_sessions, admin_engine, as_worker, omar
):
    message_id = new_message(as_worker, world.org_a, omar)
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def run(i):
        with worker_sessions() as session:
            act(session, user_id=None, org_id=world.org_a)
            barrier.wait(timeout=30)
            try:
                outcomes[i] = deliver(session, message_id, online())
            except Exception as exc:
                outcomes[i] = exc

    with resend_stub() as stub:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    assert sorted(o.value for o in outcomes) == sorted([Outcome.SENT.value, Outcome.NOTHING_TO_DO.value])
    assert len(stub.requests) == 1  # the row lock, not Resend's idempotency, kept the second one out
    row = message(admin_engine, message_id)
    assert row["status"] == "sent" and row["attempts"] == 1


def test_a_worker_that_dies_after_resend_accepted_does_not_send_twice(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.SENT
        first_id = message(admin_engine, message_id)["provider_id"]
        # The crash: Resend took the message, but the commit that recorded it never happened.
        with admin_engine.begin() as conn:
            conn.execute(
                text("update email_messages set status = 'queued', provider_id = null, sent_at = null where id = :i"),
                {"i": message_id},
            )
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.SENT

    assert len(stub.requests) == 2
    assert stub.requests[0].headers["idempotency-key"] == stub.requests[1].headers["idempotency-key"]
    assert len(stub.deliveries) == 1
    assert message(admin_engine, message_id)["provider_id"] == first_id


def test_a_failed_message_is_not_delivered_by_a_later_job(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        stub.fail_next(422, "validation_error", "Invalid `to` field.")
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.FAILED
        assert deliver_as_worker(as_worker, world.org_a, message_id, online()) is Outcome.NOTHING_TO_DO
    assert len(stub.requests) == 1
    assert message(admin_engine, message_id)["status"] == "failed"


def test_another_organizations_worker_cannot_deliver_the_message(world, as_worker, admin_engine, omar):
    message_id = new_message(as_worker, world.org_a, omar)
    with resend_stub() as stub:
        assert deliver_as_worker(as_worker, world.org_b, message_id, online()) is Outcome.NOTHING_TO_DO
    assert stub.requests == []
    assert message(admin_engine, message_id)["status"] == "queued"
