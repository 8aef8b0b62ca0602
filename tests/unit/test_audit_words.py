"""The audit trail reads as sentences (issue 22, item 8): every event type the code writes has one, amounts are
money in the organization's format, ids are names, and an unknown type still reads as a sentence."""

from __future__ import annotations

import ast
import pathlib

import pytest

import backoffice
from backoffice.domain.engagements import ACTIONS
from backoffice.queries.reconciliation import REQUESTED
from backoffice.services.audit_words import Names, describe
from backoffice.services.engagements import _event
from backoffice.services.reviews import EVENTS
from backoffice.services.self_billing import DECISIONS

PACKAGE = pathlib.Path(backoffice.__file__).parent

# The call sites whose event name is computed, and every name each can write. A new computed name fails the test
# below until it is listed here (and so described).
COMPUTED = {
    "f'engagement.{_event(action)}'": {f"engagement.{_event(a)}" for a in ACTIONS},
    "EVENTS[decision]": set(EVENTS.values()),
    "f'{kind}.hold_released'": {"invoice.hold_released", "contractor.hold_released"},
    "f'self_billing.invoice_{decision}'": {f"self_billing.invoice_{d}" for d in DECISIONS},
    "queries.REQUESTED": {REQUESTED},
    "action": set(),  # data_room.store: the name comes from its callers' audited=(…) tuples, found separately
}


def _strings(node: ast.AST) -> set[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _strings(node.body), _strings(node.orelse)
        return body | orelse if body is not None and orelse is not None else None
    return None


def _assigned(function: ast.AST, name: str) -> set[str] | None:
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return _strings(node.value)
    return None


def written_event_types() -> tuple[set[str], set[str]]:
    """Every audit event name the package writes, and the computed call sites seen."""
    names: set[str] = set()
    computed: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        # services/audit.py calls its own record() by bare name, its event names module-level constants
        # (CHAIN_CHECKED = "audit.chain_checked")
        own_record = path == PACKAGE / "services" / "audit.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "audited" and isinstance(kw.value, ast.Tuple) and (found := _strings(kw.value.elts[0])):
                    names |= found
            func = node.func
            by_module = (
                isinstance(func, ast.Attribute)
                and func.attr in ("record", "record_system")
                and isinstance(func.value, ast.Name)
                and func.value.id == "audit"
            )
            by_name = own_record and isinstance(func, ast.Name) and func.id in ("record", "record_system")
            if not (by_module or by_name) or len(node.args) < 3:
                continue
            action = node.args[2]
            found = _strings(action)
            if found is None and isinstance(action, ast.Name):
                owner = next(f for f in functions if f.lineno <= node.lineno <= f.end_lineno and f.body)
                found = _assigned(owner, action.id)
                if found is None:  # a module-level constant
                    found = _assigned(ast.Module(body=tree.body, type_ignores=[]), action.id)
            if found is None:
                computed.add(ast.unparse(action))
            else:
                names |= found
    for site in computed & COMPUTED.keys():
        names |= COMPUTED[site]
    return names, computed


def test_every_computed_event_name_is_listed():
    _, computed = written_event_types()
    assert computed == set(COMPUTED)


def test_the_scan_finds_the_events_it_should():
    names, _ = written_event_types()
    for expected in (
        "milestone.approved",
        "milestone.partially_approved",
        "engagement.work_request_sent",
        "project_category.archived",
        "document.issued",
        "invoice.step_rejected",
        "contractor.hold_released",
        "self_billing.invoice_rejected",
        "audit.chain_checked",  # services/audit.record_check: a constant, passed to audit's own record()
    ):
        assert expected in names
    assert len(names) > 70


@pytest.mark.parametrize("action", sorted(written_event_types()[0]))
def test_every_event_type_written_has_a_sentence(action):
    said = describe(action, "milestone", None, {}, who="Omar Owner", names=Names())
    assert said.known, f"{action} has no sentence in services/audit_words.SENTENCES"
    assert "{" not in said.sentence and "[" not in said.sentence and "_" not in said.sentence


US = Names({"m1": "Cabinetry and countertops", "c1": "Northwind Carpentry"}, {"m1": "USD"}, "en_US", "EUR")


def test_an_approval_reads_as_who_approved_what_for_how_much():
    said = describe(
        "milestone.approved",
        "milestone",
        "m1",
        {"title": "Cabinetry", "amount_minor": 1280000, "revision": 2, "review_id": "r", "reason": ""},
        who="Omar Owner",
        names=US,
    )
    assert said.sentence == "Omar Owner approved Cabinetry and countertops — $12,800.00"
    assert said.details == [("Title", "Cabinetry"), ("Revision", "2")]


def test_a_partial_under_route_back_reads_as_changes_requested_and_a_split_as_partly_approved():
    back = describe(
        "milestone.partially_approved", "milestone", "m1", {"partial_policy": "route_back"}, who="Omar", names=US
    )
    assert back.sentence == "Omar reviewed Cabinetry and countertops: changes requested"
    split = describe(
        "milestone.partially_approved",
        "milestone",
        "m1",
        {"partial_policy": "split", "approved_amount_minor": 405000, "amount_minor": 1280000},
        who="Omar",
        names=US,
    )
    assert split.sentence == "Omar reviewed Cabinetry and countertops: partly approved — $4,050.00"
    assert ("Amount", "$12,800.00") in split.details
    assert ("Partial approvals", "approved part paid") in split.details


def test_details_are_labelled_values_in_the_organizations_format():
    de = Names({}, {}, "de_DE", "EUR")
    said = describe(
        "payment.recorded",
        "invoice",
        "i1",
        {
            "invoice_number": "ACME-000012",
            "amount_minor": 405000,
            "currency": "EUR",
            "paid_at": "2026-03-04",
            "method": "ach",
            "contractor_id": "c1",
        },
        who="Fiona Finance",
        names=de,
    )
    assert said.sentence == "Fiona Finance recorded the payment of ACME-000012 — 4.050,00\xa0€"
    assert said.details == [("Paid on", "04.03.2026"), ("Method", "ach")]


def test_an_id_the_page_could_name_reads_as_the_name():
    said = describe(
        "member.invited",
        "membership",
        None,
        {"email": "x@example.com", "role": "contractor", "contractor_id": "c1"},
        who="Ada Admin",
        names=US,
    )
    assert said.sentence == "Ada Admin invited x@example.com as contractor"
    assert said.details == [("Contractor", "Northwind Carpentry")]


def test_settings_changes_read_as_before_and_after():
    said = describe(
        "organization.settings_changed",
        "organization",
        None,
        {
            "partial_policy": {"before": "route_back", "after": "split"},
            "default_retainage_bps": {"before": 1000, "after": 500},
        },
        who="Ada Admin",
        names=US,
    )
    assert said.sentence == "Ada Admin changed the organization's settings"
    assert said.details == [
        ("Partial approvals", "sent back (changes requested) → approved part paid"),
        ("Default retainage", "10% → 5%"),
    ]


def test_a_chain_check_reads_as_what_it_found():
    intact = describe(
        "audit.chain_checked", "audit_trail", "o1", {"intact": True, "events": 1234}, who="Alice Admin", names=US
    )
    assert intact.sentence == "Alice Admin checked the audit trail's chain: intact, 1,234 events"
    assert intact.details == []
    broken = describe(
        "audit.chain_checked", "audit_trail", "o1", {"intact": False, "events": 1}, who="Alice Admin", names=US
    )
    assert broken.sentence == "Alice Admin checked the audit trail's chain: broken, 1 event"
    said = describe("audit.unheard_of", "audit_trail", "o1", {}, who="Alice Admin", names=US)
    assert said.sentence == "Alice Admin recorded “audit: unheard of” on the audit trail"


def test_an_unknown_event_type_still_reads_as_a_sentence():
    said = describe("widget.frobbed", "widget", None, {"size_minor": 100}, who="system", names=US)
    assert not said.known
    assert said.sentence == "The system recorded “widget: frobbed” on a record"
    assert said.details == [("Size", "€1.00")]
