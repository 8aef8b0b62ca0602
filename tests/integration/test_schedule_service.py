"""A draft's milestone schedule: typed, by percent or as an equal split, and imported from CSV.

Saved through the real services as the real app role; read back as the owner role (``admin_engine``).
Whatever the mode, the milestones add up exactly to the contract value (largest remainder, DESIGN.md
section 4), errors are reported at the field, and a schedule with any error writes nothing.
"""

from __future__ import annotations

import codecs
import uuid
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kit.engagements import milestone_rows, owner_query, sign_in

from backoffice.domain.money import format_amount
from backoffice.domain.percent import format_bps
from backoffice.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from backoffice.services import engagements, milestone_import, schedule
from backoffice.services.engagements import EngagementInput
from backoffice.services.schedule import RowInput, ScheduleInput, check_schedule

DUE = "2027-06-30"


# --- helpers ------------------------------------------------------------------------------------------


def amounts_of(admin_engine, engagement_id) -> list[int]:
    return [m["amount_minor"] for m in milestone_rows(admin_engine, engagement_id)]


def events_of(admin_engine, engagement_id, action: str) -> list[dict]:
    return owner_query(
        admin_engine,
        "select actor_user_id, data from audit_events where entity_id = :id and action = :a order by seq",
        id=str(engagement_id),
        a=action,
    )


def snapshot(admin_engine, engagement_id) -> dict:
    return {
        "engagement": owner_query(admin_engine, "select * from engagements where id = :id", id=engagement_id),
        "milestones": milestone_rows(admin_engine, engagement_id),
        "events": owner_query(
            admin_engine,
            "select seq, action from audit_events where entity_id = :id order by seq",
            id=str(engagement_id),
        ),
    }


def new_draft(act_as, world, *, currency: str = "", by=None, owner=None) -> uuid.UUID:
    by = by or world.owner
    session, actor = sign_in(act_as, by, world.org_a)
    e = engagements.create_engagement(
        session,
        actor,
        EngagementInput(
            contractor_id=str(world.contractor_x),
            title="Office move",
            currency=currency,
            owner_user_id=str(owner.id) if owner else "",
        ),
    )
    return e.id


def save(act_as, person, org_id, engagement_id, rows, mode: str = "amounts", contract_value: str = ""):
    session, actor = sign_in(act_as, person, org_id)
    return schedule.save_schedule(
        session, actor, engagement_id, ScheduleInput(rows=list(rows), mode=mode, contract_value=contract_value)
    )


def typed(*amounts: str) -> list[RowInput]:
    return [RowInput(title=f"Milestone {i}", amount=a, due_date=DUE) for i, a in enumerate(amounts, start=1)]


def by_percent(*percents: str) -> list[RowInput]:
    return [RowInput(title=f"Milestone {i}", percent=p, due_date=DUE) for i, p in enumerate(percents, start=1)]


def untyped(n: int) -> list[RowInput]:
    return [RowInput(title=f"Milestone {i}", due_date=DUE) for i in range(1, n + 1)]


def send(act_as, world, engagement_id) -> None:
    session, actor = sign_in(act_as, world.owner, world.org_a)
    engagements.perform(session, actor, engagement_id, "send")


def import_file(act_as, person, org_id, engagement_id, content: bytes, filename: str = "schedule.csv") -> int:
    session, actor = sign_in(act_as, person, org_id)
    return milestone_import.import_schedule(session, actor, engagement_id, content, filename)


def csv_bytes(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


# --- the three modes ----------------------------------------------------------------------------------


def test_typed_amounts_are_saved_in_order_with_their_details(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    saved = save(
        act_as,
        world.owner,
        world.org_a,
        eid,
        [
            RowInput(
                title="Design", deliverable="Floor plans\nand elevations", amount="1,000.00", due_date="2027-01-31"
            ),
            RowInput(title="Build", amount="$2,500.50", due_date="2027-02-28"),
            RowInput(title="Handover", amount="USD 99.99", due_date="2027-03-31"),
        ],
    )

    assert len(saved) == 3
    rows = milestone_rows(admin_engine, eid)
    assert [(m["seq"], m["title"], m["deliverable"], m["amount_minor"], m["due_date"], m["status"]) for m in rows] == [
        (1, "Design", "Floor plans\nand elevations", 100000, date(2027, 1, 31), "planned"),
        (2, "Build", "", 250050, date(2027, 2, 28), "planned"),
        (3, "Handover", "", 9999, date(2027, 3, 31), "planned"),
    ]
    assert {(m["org_id"], m["contractor_id"]) for m in rows} == {(world.org_a, world.contractor_x)}
    assert sorted(m.id for m in saved) == sorted(m["id"] for m in rows)
    (event,) = events_of(admin_engine, eid, "engagement.schedule_saved")
    assert event["actor_user_id"] == world.owner.id
    assert (
        event["data"]["mode"] == "amounts"
        and event["data"]["contract_value"] == 360049
        and event["data"]["removed"] == 0
    )
    assert [m["amount_minor"] for m in event["data"]["milestones"]] == [100000, 250050, 9999]


@pytest.mark.parametrize(
    ("contract_value", "percents", "expected"),
    [
        ("1,000.00", ("12.5", "37.5", "50"), [12500, 37500, 50000]),
        ("100.00", ("33.33", "33.33", "33.34"), [3333, 3333, 3334]),
        ("0.10", ("33.33", "33.33", "33.34"), [3, 3, 4]),  # the leftover cent goes to the largest remainder
        ("1.00", ("33.33%", "33.33 %", "33.34"), [33, 33, 34]),
        ("999,999.99", ("0.01", "99.99"), [10000, 99989999]),
        ("5.00", ("100",), [500]),
    ],
)
def test_percentages_of_a_contract_value_add_up_exactly_to_it(
    act_as, admin_engine, world, contract_value, percents, expected
):
    eid = new_draft(act_as, world)
    rows = [
        RowInput(title=f"M{i}", percent=p, amount="ignored in this mode", due_date=DUE) for i, p in enumerate(percents)
    ]
    save(act_as, world.owner, world.org_a, eid, rows, mode="percent", contract_value=contract_value)
    amounts = amounts_of(admin_engine, eid)
    assert amounts == expected
    total = sum(amounts)
    assert format_amount(total, "USD", symbol=False) == contract_value
    (event,) = events_of(admin_engine, eid, "engagement.schedule_saved")
    assert (event["data"]["mode"], event["data"]["contract_value"]) == ("percent", total)


@pytest.mark.parametrize(
    ("contract_value", "count", "expected"),
    [
        ("100.00", 3, [3334, 3333, 3333]),
        ("0.05", 3, [2, 2, 1]),
        ("10,000.00", 4, [250000] * 4),
        ("1,000,000.01", 7, [14285715, 14285715, 14285715, 14285714, 14285714, 14285714, 14285714]),
    ],
)
def test_an_equal_split_gives_parts_a_cent_apart_at_most_that_add_up_to_the_contract_value(
    act_as, admin_engine, world, contract_value, count, expected
):
    eid = new_draft(act_as, world)
    save(act_as, world.admin, world.org_a, eid, untyped(count), mode="equal", contract_value=contract_value)
    amounts = amounts_of(admin_engine, eid)
    assert amounts == expected
    assert format_amount(sum(amounts), "USD", symbol=False) == contract_value
    assert max(amounts) - min(amounts) <= 1


@settings(max_examples=150, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=10**11),
    weights=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=12),
    mode=st.sampled_from(["percent", "equal"]),
)
def test_checked_percent_and_equal_schedules_always_sum_to_the_contract_value(total, weights, mode):
    """The allocation the service saves (check_schedule is the pure part of save_schedule)."""
    if mode == "percent":  # scale the weights into percentages that add up to exactly 100%
        scaled = [w * 10_000 // sum(weights) for w in weights]
        scaled[0] += 10_000 - sum(scaled)
        if min(scaled) == 0:
            return
        rows = [RowInput(title=f"M{i}", percent=format_bps(b), due_date=DUE) for i, b in enumerate(scaled)]
    else:
        rows = untyped(len(weights))
    checked = check_schedule(
        "USD", ScheduleInput(rows=rows, mode=mode, contract_value=format_amount(total, "USD", symbol=False))
    )
    if checked.errors:
        # only when some milestone would get nothing: fewer cents than milestones, or a share under one cent
        assert set(checked.errors) == {"contract_value"}
        assert total < len(rows) or (mode == "percent" and any(total * b < 10_000 for b in scaled))
        assert checked.rows == []
        return
    assert total >= len(rows)
    assert sum(r.amount_minor for r in checked.rows) == total == checked.total
    assert all(r.amount_minor > 0 for r in checked.rows)


# --- currencies ---------------------------------------------------------------------------------------


def test_yen_amounts_have_no_decimals(act_as, admin_engine, world):
    eid = new_draft(act_as, world, currency="JPY")
    save(act_as, world.owner, world.org_a, eid, typed("1,250", "¥4,800", "JPY 7"))
    assert amounts_of(admin_engine, eid) == [1250, 4800, 7]

    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        save(act_as, world.owner, world.org_a, eid, typed("1,250.50", "100"))
    assert set(exc.value.fields) == {"rows-0-amount"}
    assert "no decimals" in exc.value.fields["rows-0-amount"]
    assert snapshot(admin_engine, eid) == before


def test_yen_percentages_and_splits_allocate_whole_yen(act_as, admin_engine, world):
    eid = new_draft(act_as, world, currency="JPY")
    save(
        act_as,
        world.owner,
        world.org_a,
        eid,
        by_percent("33.33", "33.33", "33.34"),
        mode="percent",
        contract_value="100",
    )
    assert amounts_of(admin_engine, eid) == [33, 33, 34]
    save(act_as, world.owner, world.org_a, eid, untyped(3), mode="equal", contract_value="1,000")
    assert amounts_of(admin_engine, eid) == [334, 333, 333]


def test_dinar_amounts_have_three_decimals(act_as, admin_engine, world):
    eid = new_draft(act_as, world, currency="KWD")
    save(act_as, world.owner, world.org_a, eid, typed("1.234", "1,250.5", "0.001"))
    assert amounts_of(admin_engine, eid) == [1234, 1250500, 1]

    save(act_as, world.owner, world.org_a, eid, untyped(3), mode="equal", contract_value="1.000")
    assert amounts_of(admin_engine, eid) == [334, 333, 333]
    save(act_as, world.owner, world.org_a, eid, by_percent("10", "90"), mode="percent", contract_value="0.005")
    assert amounts_of(admin_engine, eid) == [1, 4]  # 0.5 and 4.5 thousandths: the leftover goes to the earlier tie

    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        save(act_as, world.owner, world.org_a, eid, typed("1.2345"))
    assert set(exc.value.fields) == {"rows-0-amount"}
    assert "3 decimals" in exc.value.fields["rows-0-amount"]
    assert snapshot(admin_engine, eid) == before


# --- errors at the field, nothing written -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "mode", "contract_value", "fields"),
    [
        (typed("100.00", "twelve"), "amounts", "", {"rows-1-amount"}),
        (typed("100.00", "12,50"), "amounts", "", {"rows-1-amount"}),
        (typed("100.00", "-5.00"), "amounts", "", {"rows-1-amount"}),
        (typed("100.00", "0"), "amounts", "", {"rows-1-amount"}),
        (typed("100.00", "1.001"), "amounts", "", {"rows-1-amount"}),
        (typed("100.00", "€5.00"), "amounts", "", {"rows-1-amount"}),
        (typed("100.00", ""), "amounts", "", {"rows-1-amount"}),
        (
            [RowInput(amount="10.00", due_date=DUE), RowInput(title="Fine", amount="1.00", due_date=DUE)],
            "amounts",
            "",
            {"rows-0-title"},
        ),
        ([RowInput(title="x" * 201, amount="10.00", due_date=DUE)], "amounts", "", {"rows-0-title"}),
        ([RowInput(title="Tab\there", amount="10.00", due_date=DUE)], "amounts", "", {"rows-0-title"}),
        (
            [RowInput(title="T", deliverable="d" * 4001, amount="10.00", due_date=DUE)],
            "amounts",
            "",
            {"rows-0-deliverable"},
        ),
        ([RowInput(title="T", amount="10.00", due_date="31/12/2027")], "amounts", "", {"rows-0-due_date"}),
        ([RowInput(title="T", amount="10.00", due_date="2027-02-29")], "amounts", "", {"rows-0-due_date"}),
        ([RowInput(title="T", amount="10.00", due_date="1999-12-31")], "amounts", "", {"rows-0-due_date"}),
        ([RowInput(title="T", amount="10.00")], "amounts", "", {"rows-0-due_date"}),
        (
            [
                RowInput(title="A", amount="1.00", due_date=DUE),
                RowInput(),
                RowInput(title="C", amount="x", due_date=DUE),
            ],
            "amounts",
            "",
            {"rows-2-amount"},
        ),  # a blank row in between keeps the positions of the rows after it
        ([RowInput(), RowInput(title=" ", amount="  ")], "amounts", "", {"rows"}),
        ([], "amounts", "", {"rows"}),
        (by_percent("50", "50"), "percent", "", {"contract_value"}),
        (by_percent("50", "50"), "percent", "lots", {"contract_value"}),
        (by_percent("50", "40"), "percent", "100.00", {"rows"}),
        (by_percent("50", "40", "20"), "percent", "100.00", {"rows"}),
        (by_percent("50", "fifty"), "percent", "100.00", {"rows-1-percent"}),
        (by_percent("100", "0"), "percent", "100.00", {"rows-1-percent"}),
        (by_percent("50", "50.005"), "percent", "100.00", {"rows-1-percent"}),
        (by_percent("99.99", "0.01"), "percent", "0.50", {"contract_value"}),  # the 0.01% would be worth nothing
        (untyped(3), "equal", "", {"contract_value"}),
        (untyped(3), "equal", "0.02", {"contract_value"}),  # too small for every milestone to get a cent
        (
            [RowInput(due_date=DUE, amount="1"), RowInput(title="B", due_date="soon")],
            "equal",
            "10.00",
            {"rows-0-title", "rows-1-due_date"},
        ),
        (typed("1.00", "abc", "x"), "amounts", "", {"rows-1-amount", "rows-2-amount"}),
    ],
)
def test_a_bad_schedule_is_refused_at_the_field_and_writes_nothing(
    act_as, admin_engine, world, rows, mode, contract_value, fields
):
    eid = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, eid, typed("700.00", "300.00"))
    before = snapshot(admin_engine, eid)
    with pytest.raises(ValidationError) as exc:
        save(act_as, world.owner, world.org_a, eid, rows, mode=mode, contract_value=contract_value)
    assert set(exc.value.fields) == fields
    assert all(exc.value.fields.values())
    assert snapshot(admin_engine, eid) == before


def test_the_percentages_message_says_what_they_add_up_to(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    with pytest.raises(ValidationError) as exc:
        save(act_as, world.owner, world.org_a, eid, by_percent("50", "40.5"), mode="percent", contract_value="100.00")
    assert "90.5%" in exc.value.fields["rows"]
    assert milestone_rows(admin_engine, eid) == []


# --- saving again -------------------------------------------------------------------------------------


def test_saving_again_updates_reorders_and_removes_rows_keeping_their_ids(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    save(
        act_as,
        world.owner,
        world.org_a,
        eid,
        [
            RowInput(title="Design", amount="100.00", due_date="2027-01-31"),
            RowInput(title="Build", amount="200.00", due_date="2027-02-28"),
            RowInput(title="Handover", amount="300.00", due_date="2027-03-31"),
        ],
    )
    design, build, handover = milestone_rows(admin_engine, eid)

    save(
        act_as,
        world.owner,
        world.org_a,
        eid,
        [
            RowInput(id=str(handover["id"]), title="Handover and training", amount="350.00", due_date="2027-04-30"),
            RowInput(id=str(design["id"]), title="Design", amount="100.00", due_date="2027-01-31"),
            RowInput(title="Snagging", deliverable="Punch list", amount="25.00", due_date="2027-05-31"),
        ],
    )

    rows = milestone_rows(admin_engine, eid)
    assert [(m["seq"], m["id"], m["title"], m["amount_minor"], m["due_date"]) for m in rows] == [
        (1, handover["id"], "Handover and training", 35000, date(2027, 4, 30)),
        (2, design["id"], "Design", 10000, date(2027, 1, 31)),
        (3, rows[2]["id"], "Snagging", 2500, date(2027, 5, 31)),
    ]
    assert rows[2]["id"] not in {design["id"], build["id"], handover["id"]}
    assert owner_query(admin_engine, "select id from milestones where id = :id", id=build["id"]) == []
    saved_events = events_of(admin_engine, eid, "engagement.schedule_saved")
    assert [e["data"]["removed"] for e in saved_events] == [0, 1]
    assert saved_events[-1]["data"]["contract_value"] == 47500


def test_swapping_two_rows_swaps_their_sequence_numbers(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, eid, typed("1.00", "2.00"))
    first, second = milestone_rows(admin_engine, eid)
    save(
        act_as,
        world.owner,
        world.org_a,
        eid,
        [
            RowInput(id=str(second["id"]), title=second["title"], amount="2.00", due_date=DUE),
            RowInput(id=str(first["id"]), title=first["title"], amount="1.00", due_date=DUE),
        ],
    )
    assert [(m["seq"], m["id"]) for m in milestone_rows(admin_engine, eid)] == [(1, second["id"]), (2, first["id"])]


def test_a_row_naming_another_engagements_milestone_is_added_as_new_and_the_other_is_untouched(
    act_as, admin_engine, world
):
    eid = new_draft(act_as, world)
    other = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, other, typed("5.00"))
    (foreign,) = milestone_rows(admin_engine, other)
    save(
        act_as,
        world.owner,
        world.org_a,
        eid,
        [RowInput(id=str(foreign["id"]), title="Hijack", amount="1.00", due_date=DUE)],
    )
    (mine,) = milestone_rows(admin_engine, eid)
    assert mine["id"] != foreign["id"] and mine["title"] == "Hijack"
    assert milestone_rows(admin_engine, other) == [foreign]


@pytest.mark.parametrize("status", ["awaiting_acceptance", "active", "cancelled"])
def test_the_schedule_cannot_be_saved_once_the_work_request_is_sent(act_as, admin_engine, world, status):
    eid = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, eid, typed("100.00"))
    send(act_as, world, eid)
    if status == "active":
        session, actor = sign_in(act_as, world.contractor_x_user, world.org_a)
        engagements.perform(session, actor, eid, "accept")
    elif status == "cancelled":
        session, actor = sign_in(act_as, world.owner, world.org_a)
        engagements.perform(session, actor, eid, "cancel", "No longer needed.")
    before = snapshot(admin_engine, eid)
    with pytest.raises(InvalidTransition):
        save(act_as, world.owner, world.org_a, eid, typed("999.00"))
    with pytest.raises(InvalidTransition):
        import_file(act_as, world.owner, world.org_a, eid, csv_bytes("Title,Amount,Due date", f"Late,1.00,{DUE}"))
    assert snapshot(admin_engine, eid) == before


def test_only_staff_managing_the_engagement_save_its_schedule(act_as, admin_engine, world):
    eid = new_draft(act_as, world, by=world.admin, owner=world.admin)
    before = snapshot(admin_engine, eid)
    # Another project owner may not; to the contractor an unsent draft does not exist yet.
    for person, refusal in ((world.owner, Forbidden), (world.finance, Forbidden), (world.contractor_x_user, NotFound)):
        with pytest.raises(refusal):
            save(act_as, person, world.org_a, eid, typed("1.00"))
        with pytest.raises(refusal):
            import_file(act_as, person, world.org_a, eid, csv_bytes("Title,Amount,Due date", f"A,1.00,{DUE}"))
    assert snapshot(admin_engine, eid) == before
    save(act_as, world.admin, world.org_a, eid, typed("1.00"))
    assert amounts_of(admin_engine, eid) == [100]


# --- CSV preview --------------------------------------------------------------------------------------


def test_the_preview_reports_every_rows_errors_under_its_spreadsheet_row_number():
    content = csv_bytes(
        "Title,Deliverable,Amount,Due date",
        'Design,Plans,"1,250.00",2027-01-31',
        ",Nothing yet,abc,2027-13-01",
        'Build,,"4,800.00",2027-02-28',
        "",
        "Handover,,0,2027-03-31",
    )
    result = milestone_import.preview(content, "USD")

    assert result.file_errors == []
    assert [r.number for r in result.rows] == [2, 3, 4, 6]  # the header is row 1; the blank row 5 is skipped
    assert [set(r.errors) for r in result.rows] == [set(), {"title", "amount", "due_date"}, set(), {"amount"}]
    assert result.rows[0].values == {
        "title": "Design",
        "deliverable": "Plans",
        "amount": "1,250.00",
        "due_date": "2027-01-31",
    }
    assert result.rows[0].clean.amount_minor == 125000 and result.rows[0].clean.due_date == date(2027, 1, 31)
    assert result.rows[1].clean is None and result.rows[3].clean is None
    assert result.error_count == 2 and not result.ok
    assert result.total_minor == 125000 + 480000


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("Title,Deliverable,Amount,Due date", "Design,Plans,10.00,2027-01-31"),
        ("TITLE,DELIVERABLE,AMOUNT,DUE DATE", "Design,Plans,10.00,2027-01-31"),
        ("title,deliverable,amount,due_date", "Design,Plans,10.00,2027-01-31"),
        ("Title,Deliverable,Amount,Due Date", "Design,Plans,10.00,2027-01-31"),
        (" Title ,Deliverable, Amount ,Due   date", "Design,Plans,10.00,2027-01-31"),
        ("Due_Date,Amount,Title,Deliverable", "2027-01-31,10.00,Design,Plans"),
    ],
)
def test_preview_matches_headers_case_insensitively_in_any_order(header, row):
    result = milestone_import.preview(csv_bytes(header, row), "USD")
    assert result.ok, (result.file_errors, [r.errors for r in result.rows])
    (only,) = result.rows
    assert (only.clean.title, only.clean.deliverable, only.clean.amount_minor, only.clean.due_date) == (
        "Design",
        "Plans",
        1000,
        date(2027, 1, 31),
    )


def test_the_deliverable_column_may_be_left_out():
    result = milestone_import.preview(csv_bytes("Title,Amount,Due date", f"Design,10.00,{DUE}"), "USD")
    assert result.ok and result.rows[0].clean.deliverable == ""


def test_preview_reads_a_file_saved_by_excel_with_a_byte_order_mark():
    content = codecs.BOM_UTF8 + csv_bytes("Title,Amount,Due date", 'Café fit-out,"1,000.00",2027-01-31')
    result = milestone_import.preview(content, "USD")
    assert result.ok, result.file_errors
    assert result.rows[0].clean.title == "Café fit-out" and result.rows[0].clean.amount_minor == 100000


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_preview_refuses_a_file_that_is_not_utf8_with_a_message_saying_how_to_save_it(encoding):
    content = "Title,Amount,Due date\r\nCafé fit-out,10.00,2027-01-31\r\n".encode(encoding)
    result = milestone_import.preview(content, "USD")
    assert result.rows == [] and not result.ok
    (message,) = result.file_errors
    assert "UTF-8" in message


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("Title,Deliverable,Amount", "due date"),
        ("Title,Due date", "amount"),
        ("Name,Amount,Due date", "title"),
        ("Deliverable", "title, amount, due date"),
    ],
)
def test_preview_names_a_missing_column(header, missing):
    result = milestone_import.preview(csv_bytes(header, "a,b,c"), "USD")
    assert result.rows == [] and not result.ok
    (message,) = result.file_errors
    assert f"no {missing} column" in message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (csv_bytes("Title,Amount,Due date"), "no milestones"),
        (csv_bytes("Title,Amount,Due date", ",,", ""), "no milestones"),
        (csv_bytes("Title,Amount,Amount,Due date", "a,1,1,2027-01-01"), "more than one amount"),
        (b"x" * (milestone_import.MAX_BYTES + 1), "larger than"),
    ],
)
def test_preview_reports_file_level_problems(content, words):
    result = milestone_import.preview(content, "USD")
    assert not result.ok
    assert len(result.file_errors) == 1 and words in result.file_errors[0]


def test_preview_checks_amounts_in_the_engagements_currency():
    content = csv_bytes("Title,Amount,Due date", f'A,"1,250.00",{DUE}', f'B,"1,250",{DUE}')
    yen = milestone_import.preview(content, "JPY")
    assert [set(r.errors) for r in yen.rows] == [{"amount"}, set()]
    dinar = milestone_import.preview(content, "KWD")
    assert dinar.ok and [r.clean.amount_minor for r in dinar.rows] == [1250000, 1250000]


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD", "EUR"])
def test_the_template_previews_cleanly_in_its_own_currency(currency):
    result = milestone_import.preview(milestone_import.template_csv(currency).encode("utf-8"), currency)
    assert result.ok, (result.file_errors, [r.errors for r in result.rows])
    assert [r.number for r in result.rows] == [2, 3]
    assert [r.clean.title for r in result.rows] == ["Design", "Build"]


# --- CSV import: all rows or none ---------------------------------------------------------------------


def test_importing_a_file_appends_every_row_after_the_existing_milestones(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, eid, typed("100.00"))
    content = csv_bytes(
        "title,deliverable,amount,due date",
        'Design,Plans,"1,250.00",2027-01-31',
        "",
        'Build,"Structure, inspected","4,800.00",2027-02-28',
    )
    added = import_file(act_as, world.owner, world.org_a, eid, content, "plan.csv")

    assert added == 2
    rows = milestone_rows(admin_engine, eid)
    assert [(m["seq"], m["title"], m["deliverable"], m["amount_minor"], m["due_date"]) for m in rows] == [
        (1, "Milestone 1", "", 10000, date(2027, 6, 30)),
        (2, "Design", "Plans", 125000, date(2027, 1, 31)),
        (3, "Build", "Structure, inspected", 480000, date(2027, 2, 28)),
    ]
    (event,) = events_of(admin_engine, eid, "engagement.milestones_imported")
    assert event["actor_user_id"] == world.owner.id
    assert event["data"] == {"source": "CSV plan.csv", "count": 2, "total_minor": 605000}


def test_importing_a_file_with_one_bad_row_imports_nothing_and_names_the_row(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, eid, typed("100.00"))
    before = snapshot(admin_engine, eid)
    content = csv_bytes(
        "Title,Amount,Due date",
        f"Design,10.00,{DUE}",
        f"Build,10.00,{DUE}",
        f"Handover,ten,{DUE}",
        f"Snagging,10.00,{DUE}",
    )
    with pytest.raises(ValidationError) as exc:
        import_file(act_as, world.owner, world.org_a, eid, content)
    assert set(exc.value.fields) == {"file"}
    assert "row 4" in exc.value.fields["file"]
    assert snapshot(admin_engine, eid) == before
    assert len(milestone_rows(admin_engine, eid)) == 1


def test_importing_a_file_with_a_file_level_problem_imports_nothing(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    before = snapshot(admin_engine, eid)
    for content in (
        csv_bytes("Title,Amount", "Design,10.00"),
        "Title,Amount,Due date\nCafé,1.00,2027-01-01\n".encode("cp1252"),
        b"",
    ):
        with pytest.raises(ValidationError) as exc:
            import_file(act_as, world.owner, world.org_a, eid, content)
        assert set(exc.value.fields) == {"file"}
    assert snapshot(admin_engine, eid) == before


def test_importing_into_a_yen_draft_checks_the_file_in_yen(act_as, admin_engine, world):
    eid = new_draft(act_as, world, currency="JPY")
    with pytest.raises(ValidationError) as exc:
        import_file(
            act_as, world.owner, world.org_a, eid, csv_bytes("Title,Amount,Due date", f'Design,"1,250.00",{DUE}')
        )
    assert set(exc.value.fields) == {"file"}
    assert milestone_rows(admin_engine, eid) == []
    assert (
        import_file(act_as, world.owner, world.org_a, eid, csv_bytes("Title,Amount,Due date", f'Design,"1,250",{DUE}'))
        == 1
    )
    assert amounts_of(admin_engine, eid) == [1250]


def test_a_file_that_would_take_the_schedule_past_the_limit_imports_nothing(act_as, admin_engine, world):
    eid = new_draft(act_as, world)
    save(act_as, world.owner, world.org_a, eid, typed(*["1.00"] * 150))
    before = snapshot(admin_engine, eid)
    content = csv_bytes("Title,Amount,Due date", *[f"Extra {i},1.00,{DUE}" for i in range(51)])
    with pytest.raises(ValidationError) as exc:
        import_file(act_as, world.owner, world.org_a, eid, content)
    assert set(exc.value.fields) == {"rows"}
    assert snapshot(admin_engine, eid) == before


def test_a_quoted_deliverable_over_several_lines_is_one_spreadsheet_row():
    content = csv_bytes(
        "Title,Deliverable,Amount,Due date",
        f'Design,"Plans\nand elevations",10.00,{DUE}',
        f"Build,,oops,{DUE}",
    )
    result = milestone_import.preview(content, "USD")
    assert [r.number for r in result.rows] == [2, 3]
    assert result.rows[0].clean.deliverable == "Plans\nand elevations"
    assert set(result.rows[1].errors) == {"amount"}
