"""Accessibility checks a browser test can run on any page it has open.

``AxeCheck`` runs axe-core (the copy npm installed from package-lock.json, read from
node_modules and evaluated in the page: never a CDN, and the pages' Content-Security-Policy stays
on) with the WCAG 2.0, 2.1 and 2.2 A and AA rules, and fails on any violation. The other helpers
check what axe cannot: no sideways scrolling at 320 px, the WCAG 1.4.12 text spacing, where the
keyboard focus is and that it can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
NARROW = {"width": 320, "height": 640}  # 1280 px at 400 % zoom (WCAG 1.4.10)

RUN_AXE = """async (tags) => {
  const result = await axe.run(document, { runOnly: { type: 'tag', values: tags },
                                           resultTypes: ['violations'] });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`) }));
}"""


@lru_cache(maxsize=1)
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"No axe-core at {AXE}: run `npm ci` (package-lock.json pins it; `make test` "
                    "and .ci/run do this).")
    return AXE.read_text(encoding="utf-8")


@dataclass
class AxeCheck:
    """Runs axe on a page in a named state; ``checked`` lists the states that passed."""

    checked: list[str] = field(default_factory=list)

    def __call__(self, page: Page, state: str) -> None:
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(axe_source())  # DevTools evaluation: the page's CSP does not apply
        violations = page.evaluate(RUN_AXE, WCAG_TAGS)
        report = "\n".join(f"- {v['id']} ({v['impact']}): {v['help']}\n    "
                           + "\n    ".join(v["nodes"]) for v in violations)
        assert not violations, f"axe found WCAG A/AA problems on {page.url} ({state}):\n{report}"
        self.checked.append(state)


def scrolls_sideways(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth"
                         " > document.documentElement.clientWidth")


# WCAG 1.4.12's spacing, set on every element through the CSSOM (an inline <style> would be
# refused by the pages' Content-Security-Policy, as it should be).
TEXT_SPACING = """() => {
  for (const el of document.querySelectorAll('body, body *')) {
    el.style.setProperty('line-height', '1.5', 'important');
    el.style.setProperty('letter-spacing', '0.12em', 'important');
    el.style.setProperty('word-spacing', '0.16em', 'important');
  }
  for (const p of document.querySelectorAll('p')) {
    p.style.setProperty('margin-bottom', '2em', 'important');
  }
  // Controls whose text no longer fits their box (text cut off or overlapping).
  return [...document.querySelectorAll('button, a.button, label, select')]
    .filter((el) => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
    .map((el) => el.outerHTML.slice(0, 120));
}"""


def clipped_with_text_spacing(page: Page) -> list[str]:
    return page.evaluate(TEXT_SPACING)


def focused(page: Page) -> dict:
    """The focused element: tag, id, text, accessible-ish name, and whether the focus shows."""
    return page.evaluate("""() => {
      const el = document.activeElement;
      const style = el ? getComputedStyle(el) : null;
      return { tag: el ? el.tagName.toLowerCase() : null, id: el ? el.id : null,
               text: el ? (el.innerText || el.value || '').trim() : '',
               label: el && el.labels && el.labels[0] ? el.labels[0].innerText.trim() : '',
               type: el ? el.getAttribute('type') : null, checked: el ? !!el.checked : false,
               visible: !!el && el !== document.body
                 && (el.matches(':focus-visible') || el.matches('input[type^=date]:focus-within'))
                 && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 };
    }""")


def tab_to(page: Page, matches, *, limit: int = 60, back: bool = False) -> dict:
    """Press Tab (or Shift+Tab) until ``matches(focused)``; every stop must show its focus."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = focused(page)
        assert now["visible"], f"the keyboard focus cannot be seen on {now}"
        if matches(now):
            return now
    raise AssertionError(f"Tab never reached the element wanted; last focus: {focused(page)}")
