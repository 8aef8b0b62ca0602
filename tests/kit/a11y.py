"""What the accessibility tests share: the main pages of the journey and who opens them, the demo's rows
those pages need (read as the owner role, never changed), signing in as a demo person, the form controls
without an accessible name, keyboard moves (Tab until the focus is where a person wants it) and work
submitted and decided through the services for the tests' own engagements."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import Page, expect
from sqlalchemy import text

from backoffice.services import reviews, submissions
from backoffice.services.demo_evidence import photo_png, report_pdf
from backoffice.services.evidence import UploadedFile
from kit.engagements import acting

ADMIN = "admin@acme.example"
OWNER = "owner@acme.example"
FINANCE = "finance@acme.example"
NINA = "nina@northwind.example"  # contractor user of Northwind Design Ltd (the active and completed engagements)
BEN = "ben@bluebird.example"  # contractor user of Bluebird Electrical LLC (a work request to accept)
ROLE_OF = {ADMIN: "admin", OWNER: "owner", FINANCE: "finance", NINA: "contractor", BEN: "contractor (work request)"}
NAME_OF = {
    ADMIN: "Ada Admin",
    OWNER: "Omar Owner",
    FINANCE: "Fiona Finance",
    NINA: "Nina Northwind",
    BEN: "Ben Bluebird",
}


@dataclass(frozen=True)
class MainPage:
    who: str | None  # a demo login, or None: signed out
    name: str  # what a person calls the page
    path: str  # with {placeholders} filled from demo_ids()

    @property
    def label(self) -> str:
        return f"{ROLE_OF[self.who] if self.who else 'signed out'}: {self.name}"


MAIN_PAGES = (
    MainPage(None, "login", "/login"),
    MainPage(None, "forgot password", "/password/forgot"),
    # The project owner: engagements, their schedules and change orders, and the review screen.
    MainPage(OWNER, "home", "/"),
    MainPage(OWNER, "engagements list", "/engagements"),
    MainPage(OWNER, "engagement page (active)", "/engagements/{kitchen}"),
    MainPage(OWNER, "engagement page (completed)", "/engagements/{lobby}"),
    MainPage(OWNER, "engagement page (draft)", "/engagements/{showroom}"),
    MainPage(OWNER, "engagement page (awaiting acceptance)", "/engagements/{rewiring}"),
    MainPage(OWNER, "engagement page (billed on completion, half way)", "/engagements/{fit_out}"),
    MainPage(OWNER, "new engagement form", "/engagements/new"),
    MainPage(OWNER, "engagement terms form", "/engagements/{showroom}/terms"),
    MainPage(OWNER, "milestones schedule editor", "/engagements/{showroom}/milestones"),
    MainPage(OWNER, "CSV import page", "/engagements/{showroom}/milestones/import"),
    MainPage(OWNER, "change order form", "/engagements/{kitchen}/change-orders/new"),
    MainPage(OWNER, "review queue", "/reviews/"),
    MainPage(OWNER, "review screen (decision panel)", "/milestones/{cabinetry}"),
    MainPage(OWNER, "milestone page (approved after a dispute)", "/milestones/{demolition}"),
    MainPage(OWNER, "due", "/engagements/due"),
    MainPage(OWNER, "retainage report", "/retainage/"),
    MainPage(OWNER, "notifications", "/notifications/"),
    MainPage(OWNER, "projects list", "/projects"),
    MainPage(OWNER, "project page (three proposals side by side)", "/projects/{open_project}"),
    MainPage(OWNER, "award confirmation", "/projects/{open_project}/proposals/{cheapest_proposal}/accept"),
    MainPage(OWNER, "new project form", "/projects/new"),
    # Finance: the money.
    MainPage(FINANCE, "home", "/"),
    MainPage(FINANCE, "payment queue", "/payments/"),
    MainPage(FINANCE, "invoice page (waiting for payment)", "/invoices/{invoice}"),
    MainPage(FINANCE, "invoice page (paid)", "/invoices/{paid_invoice}"),
    MainPage(FINANCE, "batches list", "/batches/"),
    MainPage(FINANCE, "batch page", "/batches/{batch}"),
    MainPage(FINANCE, "remittance import page", "/payments/remittance"),
    MainPage(FINANCE, "retainage report", "/retainage/"),
    MainPage(FINANCE, "data room", "/documents/"),
    MainPage(FINANCE, "verify a document", "/documents/verify"),
    MainPage(FINANCE, "e-invoicing settings (read only)", "/settings/e-invoicing"),
    MainPage(FINANCE, "contractors' e-invoicing details", "/e-invoicing/contractors"),
    MainPage(FINANCE, "audit trail", "/audit/"),
    # The admin: people, contractors, settings, the outbox.
    MainPage(ADMIN, "home", "/"),
    MainPage(ADMIN, "members", "/admin/members"),
    MainPage(ADMIN, "contractors", "/admin/contractors"),
    MainPage(ADMIN, "contractor page", "/admin/contractors/{northwind}"),
    MainPage(ADMIN, "settings", "/admin/settings"),
    MainPage(ADMIN, "export settings", "/admin/settings/export"),
    MainPage(ADMIN, "e-invoicing settings", "/settings/e-invoicing"),
    MainPage(ADMIN, "a contractor's e-invoicing details", "/contractors/{northwind}/e-invoicing"),
    MainPage(ADMIN, "project categories", "/projects/categories"),
    MainPage(ADMIN, "outbox list", "/admin/outbox/"),
    MainPage(ADMIN, "audit trail", "/audit/"),
    MainPage(ADMIN, "data room", "/documents/"),
    MainPage(ADMIN, "verify a document", "/documents/verify"),
    # Contractors: their work and their payments.
    MainPage(NINA, "home", "/"),
    MainPage(NINA, "engagements list", "/engagements"),
    MainPage(NINA, "engagement page (active)", "/engagements/{kitchen}"),
    MainPage(NINA, "engagement page (billed on completion, a task to invoice)", "/engagements/{fit_out}"),
    MainPage(NINA, "invoice approved tasks", "/engagements/{fit_out}/invoice-tasks"),
    MainPage(NINA, "milestone page (submit form)", "/milestones/{finishing}"),
    MainPage(NINA, "milestone page (awaiting review)", "/milestones/{cabinetry}"),
    MainPage(NINA, "Your payments", "/invoices/"),
    MainPage(NINA, "invoice page", "/invoices/{paid_invoice}"),
    MainPage(NINA, "notifications", "/notifications/"),
    MainPage(NINA, "my e-invoicing details", "/e-invoicing"),
    MainPage(NINA, "self-billing agreement (confirmed)", "/self-billing/agreement"),
    MainPage(NINA, "projects open to proposals", "/proposals"),
    MainPage(NINA, "project with its own proposal", "/proposals/project/{open_project}"),
    MainPage(NINA, "proposal form (edit)", "/proposals/{nina_proposal}/edit"),
    MainPage(BEN, "home", "/"),
    MainPage(BEN, "engagement page (work request to accept)", "/engagements/{rewiring}"),
    MainPage(BEN, "self-billing agreement (none recorded)", "/self-billing/agreement"),
    # The header's search (issue 22): results grouped by kind.
    MainPage(OWNER, "search results", "/search?q=kitchen"),
    MainPage(ADMIN, "search results (contractors too)", "/search?q=no"),
    MainPage(NINA, "search results", "/search?q=kitchen"),
    # Issue 22: each person's own preferences (time zone, each email or a daily digest).
    MainPage(OWNER, "preferences", "/account/preferences"),
    MainPage(NINA, "preferences", "/account/preferences"),
)

# Issue 22: every contractor page and the owner's review screen are read on a phone too, at 390 px
# (tests/browser/test_phone_layouts.py; axe in test_accessibility.py).
PHONE_WIDTH = 390
PHONE_PAGES = tuple(p for p in MAIN_PAGES if p.who in (NINA, BEN) or p.name == "review screen (decision panel)")


def demo_ids(admin_engine, acme) -> dict[str, str]:
    """The demo rows the main pages show, by the names MAIN_PAGES uses (read as the owner role)."""
    with admin_engine.connect() as conn:

        def one(sql: str, **params) -> str:
            return str(conn.execute(text(sql), {"org": acme, **params}).scalar_one())

        def engagement(title: str) -> str:
            return one("select id from engagements where org_id = :org and title = :t", t=title)

        def milestone(engagement_id: str, title: str) -> str:
            return one("select id from milestones where engagement_id = :e and title = :t", e=engagement_id, t=title)

        ids = {
            "kitchen": engagement("Kitchen renovation, 14 Elm St"),
            "lobby": engagement("Lobby refresh"),
            "showroom": engagement("Showroom signage"),
            "rewiring": engagement("Office rewiring, 2nd floor"),
            "fit_out": engagement("Office fit-out, 4th floor"),  # services/demo_completion
            "northwind": one("select id from contractors where org_id = :org and legal_name = 'Northwind Design Ltd'"),
            "batch": one("select id from ap_export_batches where org_id = :org order by created_at limit 1"),
        }
        ids["open_project"] = one(
            "select id from projects where org_id = :org and title = 'Meeting rooms refit, 3rd floor'"
        )
        ids["cheapest_proposal"] = one(
            "select id from proposals where project_id = :p order by price_minor limit 1", p=ids["open_project"]
        )
        ids["nina_proposal"] = one(
            "select q.id from proposals q join contractors c on c.id = q.contractor_id"
            " where q.project_id = :p and c.legal_name = 'Northwind Design Ltd'",
            p=ids["open_project"],
        )
        ids["cabinetry"] = milestone(ids["kitchen"], "Cabinetry and countertops")
        ids["demolition"] = milestone(ids["kitchen"], "Demolition and rough-in")
        ids["finishing"] = milestone(ids["kitchen"], "Finishing and handover")
        ids["invoice"] = one(
            "select id from invoices where engagement_id = :e and status = 'approved' order by number limit 1",
            e=ids["kitchen"],
        )
        ids["paid_invoice"] = one(
            "select id from invoices where engagement_id = :e and status = 'paid' order by number limit 1",
            e=ids["lobby"],
        )
    return ids


def sign_in_as(page: Page, email: str, password: str, name: str) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("details.nav-account summary")).to_have_text(name)


def open_page(page: Page, path: str) -> None:
    """Open ``path`` and wait until it is shown as a person sees it (its scripts run, its htmx loads done)."""
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    expect(page.locator("h1").first).to_be_visible()
    page.wait_for_load_state("networkidle")


# Every form control a person fills in or chooses (not hidden fields, not buttons) that has no accessible
# name: no <label> with text, no aria-label, no aria-labelledby naming an element with text. Controls in a
# closed <details> (the account menu) count too: they are one click away.
_UNNAMED = """
() => {
  const textOf = (el) => (el && el.textContent || "").trim();
  const skip = new Set(["hidden", "submit", "button", "reset", "image"]);
  const out = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (skip.has((el.getAttribute("type") || "").toLowerCase())) continue;
    const byLabel = Array.from(el.labels || []).some((l) => textOf(l));
    const byAria = (el.getAttribute("aria-label") || "").trim();
    const byIds = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
      .some((id) => textOf(document.getElementById(id)));
    if (!(byLabel || byAria || byIds)) {
      out.push(el.outerHTML.replace(/\\s+/g, " ").slice(0, 160));
    }
  }
  return out;
}
"""


def unnamed_controls(page: Page) -> list[str]:
    """The form controls on the page that a screen reader could announce only as "edit text" or "combo box"."""
    return page.evaluate(_UNNAMED)


# --- the keyboard ----------------------------------------------------------------------------------------

_FOCUSED = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id || null,
    type: el.getAttribute("type"),
    name: el.getAttribute("name"),
    value: el.getAttribute("value"),
    text: (el.innerText || el.value || "").trim().replace(/\\s+/g, " ").slice(0, 200),
    href: el.getAttribute("href"),
    label: el.getAttribute("aria-label") || (el.labels && el.labels[0] ? el.labels[0].innerText.trim() : null),
    focusVisible: el.matches(":focus-visible"),
    outlineStyle: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth) || 0,
    inside: Array.from(document.querySelectorAll("[id]")).filter((p) => p.contains(el)).map((p) => p.id),
  };
}
"""


def focused(page: Page) -> dict | None:
    """What has the keyboard focus (None: nothing, the focus is lost to <body>), with its focus style."""
    return page.evaluate(_FOCUSED)


def tab_to(page: Page, predicate, limit: int = 80, *, backwards: bool = False) -> dict:
    """Press Tab (Shift+Tab with ``backwards``) until ``predicate(focused(page))`` holds; the focused
    element. Fails naming the elements the focus passed through when ``limit`` presses do not get there."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        now = focused(page)
        if now is not None and predicate(now):
            return now
        seen.append(now and f"{now['tag']}#{now['id'] or ''} {now['text'][:40]!r}")
    raise AssertionError(f"the focus never got there in {limit} presses of Tab; it passed: {seen}")


def has_visible_focus(info: dict) -> bool:
    """The element shows that it has the focus: it matches :focus-visible and draws an outline."""
    return info["focusVisible"] and info["outlineStyle"] != "none" and info["outlineWidth"] >= 1


# --- work on the tests' own engagements (never the demo's) -----------------------------------------------


def submit_work(app_sessions, world, milestone_id, note: str, *, with_files: bool = True) -> None:
    """The contractor marks the milestone complete with a PDF, two photos and a link, through the service
    (the review screen opens the first photo's preview and leaves the second closed)."""
    files = (
        [
            UploadedFile.from_bytes("site-report.pdf", report_pdf("Site report", ["All done as specified."])),
            UploadedFile.from_bytes("site-photo.png", photo_png()),
            UploadedFile.from_bytes("site-photo-west.png", photo_png(tint=(150, 110, 70))),
        ]
        if with_files
        else []
    )
    with acting(app_sessions, world.contractor_x_user, world.org_a) as (session, actor):
        submissions.submit_work(
            session,
            actor,
            milestone_id,
            submissions.SubmissionInput(note=note, links="https://drive.example.com/site-photos", files=files),
        )


def decide(app_sessions, world, milestone_id, decision: str, reason: str = "") -> None:
    """The project owner decides the latest revision, through the service."""
    with acting(app_sessions, world.owner, world.org_a) as (session, actor):
        latest, _ = submissions.latest_submission(session, milestone_id)
        reviews.decide(session, actor, milestone_id, reviews.DecisionInput(str(latest.id), decision, reason))
