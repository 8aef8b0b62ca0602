"""The project and proposal rules of backoffice/domain/projects.py and their SQL twins in sql/projects.sql say the
same for every combination of their arguments (issue 19). The guards call the twins; the services call the Python.
Each is held to a table written out here (STYLE.md: expected values come from outside the code under test), the
Python and the SQL alike, as the web role, whose guards call the twins in production."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

from sqlalchemy import text

from backoffice.domain import projects as rules
from backoffice.domain.projects import ProjectStatus, ProposalRefusal, ProposalStatus

PROJECT_STATUSES = [s.value for s in ProjectStatus]
PROPOSAL_STATUSES = [s.value for s in ProposalStatus]
DEADLINE = date(2027, 3, 10)
DAYS = {"before": date(2027, 3, 9), "on": DEADLINE, "after": date(2027, 3, 11)}


def rows(engine, sql: str, params: dict):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_the_combinations_cover_every_status_of_the_domain():
    assert PROJECT_STATUSES == ["open", "awarded", "cancelled"]
    assert PROPOSAL_STATUSES == ["submitted", "accepted", "declined", "withdrawn"]
    assert [r.value for r in ProposalRefusal] == ["closed", "deadline", "not_invited", "duplicate"]


# --- moves ---------------------------------------------------------------------------------------------------------

PROJECT_MOVES_WRITTEN_OUT = {
    ("open", "awarded"): {"admin", "owner"},
    ("open", "cancelled"): {"admin", "owner"},
}
PROPOSAL_MOVES_WRITTEN_OUT = {
    ("submitted", "withdrawn"): {"contractor"},
    ("submitted", "accepted"): {"admin", "owner"},
    ("submitted", "declined"): {"admin", "owner"},
}


def move_roles(app_engine, function: str, statuses: list[str]) -> dict[tuple[str, str], set[str]]:
    pairs = list(itertools.product(statuses, repeat=2))
    got = rows(
        app_engine,
        f"select a, b, {function}(a, b) from unnest(cast(:a as text[]), cast(:b as text[])) as t(a, b)",
        {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]},
    )
    assert len(got) == len(statuses) ** 2
    return {(a, b): set(roles) for a, b, roles in got}


def test_project_moves_and_who_makes_them_are_the_same_in_sql_and_python(app_engine):
    in_sql = move_roles(app_engine, "project_move_roles", PROJECT_STATUSES)
    in_python = {
        (a, b): set(rules.PROJECT_MOVES.get((ProjectStatus(a), ProjectStatus(b)), ()))
        for a, b in itertools.product(PROJECT_STATUSES, repeat=2)
    }
    written = {pair: PROJECT_MOVES_WRITTEN_OUT.get(pair, set()) for pair in in_sql}
    assert in_sql == written
    assert in_python == written


def test_proposal_moves_and_who_makes_them_are_the_same_in_sql_and_python(app_engine):
    in_sql = move_roles(app_engine, "proposal_move_roles", PROPOSAL_STATUSES)
    in_python = {
        (a, b): set(rules.PROPOSAL_MOVES.get((ProposalStatus(a), ProposalStatus(b)), ()))
        for a, b in itertools.product(PROPOSAL_STATUSES, repeat=2)
    }
    written = {pair: PROPOSAL_MOVES_WRITTEN_OUT.get(pair, set()) for pair in in_sql}
    assert in_sql == written
    assert in_python == written


def test_a_move_the_domain_does_not_know_has_nobody_to_make_it_in_sql(app_engine):
    got = rows(
        app_engine,
        "select project_move_roles('open', 'nonsense'), project_move_roles(null, 'awarded'),"
        " proposal_move_roles('submitted', null), proposal_move_roles('Submitted', 'accepted')",
        {},
    )
    assert got == [([], [], [], [])]


# --- when a project takes proposals, and why a contractor may not propose -----------------------------------------

TAKES_PROPOSALS_WRITTEN_OUT = {
    ("open", "before"): True,
    ("open", "on"): True,  # the deadline day is the last day proposals are taken
    ("open", "after"): False,
    ("awarded", "before"): False,
    ("awarded", "on"): False,
    ("awarded", "after"): False,
    ("cancelled", "before"): False,
    ("cancelled", "on"): False,
    ("cancelled", "after"): False,
}


def test_whether_a_project_takes_proposals_is_the_same_in_sql_and_python(app_engine):
    combos = list(itertools.product(PROJECT_STATUSES, DAYS))
    got = rows(
        app_engine,
        "select s, t, project_takes_proposals(s, cast(:deadline as date), t)"
        " from unnest(cast(:s as text[]), cast(:t as date[])) as x(s, t)",
        {"deadline": DEADLINE, "s": [s for s, _ in combos], "t": [DAYS[d] for _, d in combos]},
    )
    day_name = {v: k for k, v in DAYS.items()}
    in_sql = {(s, day_name[t]): takes for s, t, takes in got}
    in_python = {(s, d): rules.takes_proposals(s, DEADLINE, DAYS[d]) for s, d in combos}
    assert in_sql == TAKES_PROPOSALS_WRITTEN_OUT
    assert in_python == TAKES_PROPOSALS_WRITTEN_OUT


def test_what_a_project_asks_once_proposed_on_is_the_same_in_sql_and_python(app_engine):
    # advance_bps: revision 0030, a completion project's advance, which its proposals' milestones are priced less of
    written_out = ["title", "description", "currency", "billing_mode", "advance_bps"]
    assert list(rules.FIXED_ONCE_PROPOSED) == written_out
    assert rows(app_engine, "select project_fixed_once_proposed()", {}) == [(written_out,)]


WITHDRAWAL_WRITTEN_OUT = {"open": True, "awarded": False, "cancelled": False}


def test_whether_a_waiting_proposal_may_be_withdrawn_is_the_same_in_sql_and_python(app_engine):
    got = rows(
        app_engine,
        "select s, project_allows_withdrawal(s) from unnest(cast(:s as text[])) as x(s)",
        {"s": PROJECT_STATUSES},
    )
    assert dict(got) == WITHDRAWAL_WRITTEN_OUT
    assert {s: rules.may_withdraw(s) for s in PROJECT_STATUSES} == WITHDRAWAL_WRITTEN_OUT
    assert rows(app_engine, "select project_allows_withdrawal(null)", {}) == [(False,)]


# Why a contractor may not submit a proposal: status, the day against the deadline, the audience, whether it is
# invited, whether it has a proposal there already (any status) -> the refusal ("-": none). "*" is any value; each
# combination matches exactly one line.
REFUSALS_WRITTEN_OUT = """
    awarded    *       *        *    *    closed
    cancelled  *       *        *    *    closed
    open       after   *        *    *    deadline
    open       before  invited  no   *    not_invited
    open       on      invited  no   *    not_invited
    open       before  invited  yes  yes  duplicate
    open       on      invited  yes  yes  duplicate
    open       before  all      *    yes  duplicate
    open       on      all      *    yes  duplicate
    open       before  invited  yes  no   -
    open       on      invited  yes  no   -
    open       before  all      *    no   -
    open       on      all      *    no   -
"""
AUDIENCES = ["invited", "all"]
YES_NO = {"yes": True, "no": False}


def refusals_written_out() -> dict[tuple, str | None]:
    table: dict[tuple, str | None] = {}
    lines = [line.split() for line in REFUSALS_WRITTEN_OUT.strip().splitlines()]
    for combo in itertools.product(PROJECT_STATUSES, DAYS, AUDIENCES, YES_NO, YES_NO):
        matches = [line[5] for line in lines if all(w in ("*", v) for w, v in zip(line[:5], combo, strict=True))]
        assert len(matches) == 1, (combo, matches)
        table[combo] = None if matches[0] == "-" else matches[0]
    return table


def test_why_a_contractor_may_not_propose_is_the_same_in_sql_and_python(app_engine):
    written = refusals_written_out()
    assert len(written) == 3 * 3 * 2 * 2 * 2 == 72
    combos = list(written)
    got = rows(
        app_engine,
        "select proposal_refusal(s, cast(:deadline as date), t, a, i, h)"
        " from unnest(cast(:s as text[]), cast(:t as date[]), cast(:a as text[]), cast(:i as boolean[]),"
        " cast(:h as boolean[])) with ordinality as x(s, t, a, i, h, n) order by n",
        {
            "deadline": DEADLINE,
            "s": [c[0] for c in combos],
            "t": [DAYS[c[1]] for c in combos],
            "a": [c[2] for c in combos],
            "i": [YES_NO[c[3]] for c in combos],
            "h": [YES_NO[c[4]] for c in combos],
        },
    )
    in_sql = {combo: refusal for combo, (refusal,) in zip(combos, got, strict=True)}
    in_python = {}
    for combo in combos:
        status, day, audience, invited, proposed = combo
        refusal = rules.proposal_refusal(status, DEADLINE, DAYS[day], audience, YES_NO[invited], YES_NO[proposed])
        in_python[combo] = refusal.value if refusal else None
    assert in_sql == written
    assert in_python == written


def test_a_missing_invitation_or_proposal_is_read_as_none_in_sql(app_engine):
    """The guard passes the result of EXISTS (never NULL); the twin still reads NULL as "no", as Python's falsy."""
    got = rows(
        app_engine,
        "select proposal_refusal('open', cast(:d as date), cast(:d as date), 'invited', null, false),"
        " proposal_refusal('open', cast(:d as date), cast(:d as date), 'all', false, null)",
        {"d": DEADLINE},
    )
    assert got == [("not_invited", None)]


REFUSAL_WORDS_WRITTEN_OUT = {
    "closed": "This project is no longer open for proposals.",
    "deadline": "The deadline for proposals on this project has passed.",
    "not_invited": "This project takes proposals from invited contractors only.",
    "duplicate": "Your organization has already proposed on this project; edit that proposal instead.",
}


def test_a_refusal_is_said_in_the_same_words_in_sql_and_python(app_engine):
    names = [*REFUSAL_WORDS_WRITTEN_OUT, "nonsense", None]
    got = dict(
        rows(
            app_engine,
            "select r, proposal_refusal_message(r) from unnest(cast(:r as text[])) as t(r)",
            {"r": names},
        )
    )
    assert got == {**REFUSAL_WORDS_WRITTEN_OUT, "nonsense": None, None: None}
    assert {r.value: r.message for r in ProposalRefusal} == REFUSAL_WORDS_WRITTEN_OUT


def test_the_day_deadlines_are_compared_with_is_the_databases_in_utc(app_engine):
    before = datetime.now(UTC).date()
    (got,) = rows(app_engine, "select project_today()", {})[0]
    assert before <= got <= datetime.now(UTC).date()
