"""Accessibility of every page in a real browser: each form control has an accessible name, and all visible text
meets WCAG 2.1 AA contrast (4.5:1, or 3:1 for large text) against the background it is drawn on."""
from __future__ import annotations

import pytest

from browser import signed_in_page
from sqlcall import PASSWORD, call, make_team, make_user

import psycopg

# Runs in the page: every visible text node's colour against the first opaque background up its ancestors
# (with opacity and alpha blended in), and every control without a label, aria-label or aria-labelledby.
AUDIT = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [r, g, b, a]; };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const blend = (fg, bg) => [0, 1, 2].map((i) => fg[i] * fg[3] + bg[i] * (1 - fg[3])).concat(1);
  const background = (el) => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let bg = [255, 255, 255, 1]; for (const l of layers.reverse()) bg = blend(l, bg); return bg; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement; if (!n.textContent.trim() || !el) continue;
    const s = getComputedStyle(el); const r = el.getBoundingClientRect();
    if (s.visibility !== "visible" || s.display === "none" || r.width === 0 || r.height === 0 || el.closest("[hidden]")) continue;
    if (el.closest("svg")) continue;  // chart labels are checked by eye; their fill is an attribute
    let fg = parse(s.color); let op = 1; for (let e = el; e; e = e.parentElement) op *= Number(getComputedStyle(e).opacity);
    if (el.matches(":disabled, :disabled *") || el.closest("[disabled], [aria-disabled=true]")) continue;  // WCAG exempts inactive controls
    const bg = background(el); fg = blend([fg[0], fg[1], fg[2], fg[3] * op], bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x); const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(s.fontSize); const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName.toLowerCase()}.${el.className} "${n.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1`);
  }
  const unlabelled = [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
    .filter((c) => c.offsetParent !== null)
    .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label") && !c.getAttribute("aria-labelledby")
                   && !(c.tagName === "BUTTON" && c.textContent.trim()) && !c.title)
    .map((c) => `${c.tagName.toLowerCase()}#${c.id}[name=${c.name || ""}]`);
  return { bad: [...new Set(bad)], unlabelled };
}"""


@pytest.fixture(scope="module")
def people(database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "a11y", ann=["annotator"], rev=["reviewer"], ana=["analyst"])
        call(conn, team["admin"], "admin", "upsert_taxonomy_node", project_id=team["project"], code="MEL",
             name="Melanoma")
        team["emails"]["op"] = f"op-{team['project']}@a11y.test"
        op = make_user(conn, team["emails"]["op"], [])
        conn.execute('UPDATE auth."user" SET operator = true WHERE id = %s', (op,))
        conn.commit()
    return team


@pytest.mark.parametrize("who,path", [("ann", "/login"), ("ann", "/"), ("ann", "/work?project={p}"),
                                      ("rev", "/review?project={p}"), ("admin", "/admin?project={p}"),
                                      ("admin", "/dashboard?project={p}"), ("ann", "/admin?project={p}"),
                                      ("op", "/organizations"), ("ana", "/dashboard?project={p}&period=7d"),
                                      ("admin", "/schema")])
def test_every_page_has_labels_and_readable_contrast(app_server, people, who, path):
    with signed_in_page(app_server.url, people["emails"][who], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(path.format(p=people["project"]))
        page.wait_for_load_state("networkidle")
        found = page.evaluate(AUDIT)
    assert found == {"bad": [], "unlabelled": []}
