"""axe-core (vendored from npm ``axe-core``, for the tests only) run on a page as a person sees it.

``check(page, label)`` runs every WCAG 2.x A/AA rule and best practice on the page, records the result
under ``label`` in the run's report (``axe-report.json`` beside the screenshots) and fails on any serious or
critical violation, naming the rule, its help text and the elements. The script is evaluated through the
DevTools protocol, which the app's Content-Security-Policy (script-src 'self') does not apply to, so the
pages are checked exactly as served."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page

AXE_VERSION = "4.14.1"
AXE_SOURCE = Path(__file__).resolve().parent.parent / "browser" / "vendor" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
BLOCKING = ("serious", "critical")

_RUN = """
async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return {
    url: location.pathname + location.search,
    title: document.title,
    violations: results.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
    })),
    passes: results.passes.length,
  };
}
"""


class Report:
    """Every check of the run: label -> {url, title, violations by impact}; written as JSON after each check."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def add(self, label: str, result: dict) -> None:
        counts: dict[str, int] = {}
        for violation in result["violations"]:
            counts[violation["impact"] or "unknown"] = counts.get(violation["impact"] or "unknown", 0) + 1
        self.results[label] = {
            "url": result["url"],
            "title": result["title"],
            "violations": counts,
            "rules": sorted(f"{v['id']} ({v['impact']})" for v in result["violations"]),
        }
        self.path.write_text(json.dumps(self.results, indent=2, sort_keys=True) + "\n")


def run(page: Page) -> dict:
    """axe's violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    return page.evaluate(_RUN)


def blocking(result: dict) -> list[dict]:
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        lines.extend(
            f"    {n['target']}: {n['summary'].splitlines()[-1].strip() if n['summary'] else ''}"
            for n in v["nodes"][:5]
        )
    return "\n".join(lines)


def check(page: Page, label: str, report: Report | None = None) -> dict:
    """Run axe on the page, record it under ``label`` and fail on serious or critical violations."""
    result = run(page)
    if report is not None:
        report.add(label, result)
    bad = blocking(result)
    assert not bad, f"axe on {label} ({result['url']}):\n{describe(bad)}"
    return result
