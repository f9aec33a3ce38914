"""The annotator page's weight budget: everything it loads of JS and CSS, uncompressed, stays under 150 KB."""
from __future__ import annotations

import psycopg

from browser import signed_in_page
from sqlcall import PASSWORD, make_team

BUDGET_KB = 150


def test_the_annotator_page_ships_under_150_kb_of_js_and_css(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "budget", ann=["annotator"])
    shipped: dict[str, int] = {}
    with signed_in_page(app_server.url, team["emails"]["ann"], PASSWORD) as page:
        page.on("response", lambda r: shipped.__setitem__(r.url, len(r.body()))
                if r.url.endswith((".js", ".css")) and r.ok else None)
        page.goto(f"/work?project={team['project']}")
        page.wait_for_selector("#start-btn:not([disabled])")
        page.wait_for_load_state("networkidle")
    assert any(u.endswith("/work.js") for u in shipped) and any(u.endswith(".css") for u in shipped), shipped
    assert sum(shipped.values()) / 1024 < BUDGET_KB, {u.rsplit("/", 1)[-1]: n for u, n in shipped.items()}
