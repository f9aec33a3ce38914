"""The metrics dashboard in a real browser, on a project whose figures are worked out by hand: five images read twice
by two annotators (classes, Fitzpatrick type and body site; a lesion mask each on one image), an AI model and
imported labels shown before the reads, everything approved, one image's work moved three days back.

Expected (docs/agreement.md has the formulas):
- class, nominal alpha: 10 ratings, MEL 6, NV 4, two images split: 1 - 9 * 4 / (100 - 52) = 0.25 (5 images);
- Fitzpatrick and body site: every image's readers agree, alpha 1 on 4 images (fewer than the project's 5);
- by Fitzpatrick type: I (images 1-2, agreed) class alpha 1, AI agreement 1; V (images 3-4, split) alpha -0.5 on
  2 images, AI agreement 0.5; no gold checks;
- lesion masks 50 x 100 px overlapping by half: Dice 2 * 2500 / 10000 = 0.5, for the pair and for the label;
- the model (images 1-4): 6 of 8 first answers took it, 6 final classes agree, kappa (0.75 - 0.5) / 0.5 = 0.5;
  the imported labels (image 5): 2 of 2, kappa undefined (one class on both sides).
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from pycocotools import mask as mask_util

from browser import signed_in_page
from test_browser_accessibility import AUDIT
from sqlcall import PASSWORD, act, call, make_team

NAMES = {"ann1": "Dr. Amelia Hart", "ann2": "Dr. Bruno Silva", "rev": "Dr. Chen Wu", "admin": "Dana Admin",
         "ana": "Erin Analyst"}
# image rank -> (ann1's class, ann2's class, Fitzpatrick type, body site, AI source)
PLAN = {1: ("MEL", "MEL", "I", "face", "model"), 2: ("NV", "NV", "I", "face", "model"),
        3: ("MEL", "NV", "V", "trunk", "model"), 4: ("NV", "MEL", "V", "trunk", "model"),
        5: ("MEL", "MEL", None, None, "import")}
AI_CLASS = {1: "MEL", 2: "NV", 3: "MEL", 4: "MEL", 5: "MEL"}


def rect_rle(x0: int, x1: int, size: int = 100) -> dict:
    m = np.zeros((size, size), np.uint8)
    m[:, x0:x1] = 1
    enc = mask_util.encode(np.asfortranarray(m))
    return {"size": [int(v) for v in enc["size"]], "counts": enc["counts"].decode()}


@pytest.fixture(scope="module")
def world(database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "dash", ann1=["annotator"], ann2=["annotator"], rev=["reviewer"], ana=["analyst"])
        with conn.transaction():
            for who, name in NAMES.items():
                conn.execute('UPDATE auth."user" SET display_name = %s WHERE id = %s', (name, team[who]))
        admin, project = team["admin"], team["project"]
        neo = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="NEO", name="Neoplasms")
        classes = {code: call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code=code, name=name,
                              parent_code="NEO")["id"]
                   for code, name in (("MEL", "Melanoma"), ("NV", "Melanocytic nevus"))}
        assert neo["id"]
        call(conn, admin, "admin", "set_descriptor_schema", project_id=project, fields=[
            {"key": "fitzpatrick", "kind": "single", "options": ["I", "II", "III", "IV", "V", "VI"]},
            {"key": "body_site", "kind": "single", "options": ["face", "trunk"]}])
        call(conn, admin, "admin", "set_quality_thresholds", project_id=project, agreement_min_shared=5,
             fast_submit_ratio=Decimal("0.25"), ai_disagreement_min=Decimal("0.8"))
        with conn.transaction():
            act(conn, admin, "admin")
            conn.execute("SELECT api.register_image(%s, 'dash/' || i, encode(sha256((%s || i)::bytea), 'hex'), 100, "
                         "100, 'image/png') FROM generate_series(1, 5) i", (project, uuid.uuid4().hex))
        images = [i for (i,) in conn.execute("SELECT id FROM core.image WHERE project_id = %s ORDER BY id",
                                             (project,))]
        conn.commit()  # each call below in a transaction of its own, as over HTTP
        rank = {image: n for n, image in enumerate(images, 1)}
        with conn.transaction():  # what the AI worker would have stored before anyone read the images
            for image, n in rank.items():
                model, version = ("derm-net", "2.1") if PLAN[n][4] == "model" else ("import:legacy", "labels")
                conn.execute("INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, "
                             "latency_ms) VALUES (%s, 'classify', %s, %s, %s, 1)",
                             (image, model, version, psycopg.types.json.Jsonb(
                                 {"classes": [{"node_id": classes[AI_CLASS[n]], "probability": 0.8}]})))
        rule = call(conn, admin, "admin", "create_work_rule", project_id=project, name="double", max_items=100,
                    annotations_per_image=2)
        call(conn, admin, "admin", "generate_work_items", rule_id=rule["id"])
        for slot, who in enumerate(("ann1", "ann2")):
            while (got := call(conn, team[who], "annotator", "next_item", project_id=project)["item"]):
                n = rank[got["image"]["id"]]
                content = {"class": classes[PLAN[n][slot]]}
                if PLAN[n][2]:
                    content["descriptors"] = {"fitzpatrick": PLAN[n][2], "body_site": PLAN[n][3]}
                if n == 1:
                    rle = rect_rle(0, 50) if who == "ann1" else rect_rle(25, 75)
                    content["regions"] = [{"type": "mask", "label": "lesion", "rle": rle}]
                call(conn, team[who], "annotator", "submit_annotation", item_id=got["id"], content=content)
        while (got := call(conn, team["rev"], "reviewer", "next_review", project_id=project)["item"]):
            call(conn, team["rev"], "reviewer", "approve", item_id=got["id"])
        # image 5's reads and their reviews three days ago (triggers off: revisions and reviews are append-only)
        with conn.transaction():
            conn.execute("SELECT set_config('role', 'none', true), set_config('request.jwt.claims', '', true)")
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE core.annotation_revision r SET created_at = r.created_at - interval '3 days', "
                         "locked_at = r.locked_at - interval '3 days' FROM core.work_item w "
                         "WHERE w.id = r.item_id AND w.image_id = %s", (images[4],))
            conn.execute("UPDATE core.review v SET created_at = v.created_at - interval '3 days' FROM core.work_item w "
                         "WHERE w.id = v.item_id AND w.image_id = %s", (images[4],))
        conn.execute("SELECT metrics.reseal()")
        conn.execute("SELECT metrics.refresh_all('test')")
        conn.commit()
        team["intervals"] = {dim: call(conn, admin, "admin", "agreement_interval", project_id=project,
                                       dimension=dim, metric="nominal")
                             for dim in ("class", "descriptor:fitzpatrick")}
    return team


def value_of(page, chart: str, label: str, series: str | None = None) -> str:
    row = page.locator(f'#chart-{chart} g[data-label="{label}"]')
    text = row.locator(f'text.value[data-series="{series}"]' if series else "text.value")
    return text.first.text_content()


def test_charts_show_the_agreement_and_quality_figures(app_server, world):
    with signed_in_page(app_server.url, world["emails"]["admin"], PASSWORD) as page:
        page.goto(f"/dashboard?project={world['project']}")
        assert page.locator("h1").inner_text().startswith("Metrics · dash-")
        assert page.title().startswith("Metrics · dash-")
        # Krippendorff's alpha with its bootstrap interval and the images behind it
        alpha = page.get_by_role("img", name=re.compile("^Krippendorff's alpha per dimension"))
        assert alpha.is_visible()
        cls = world["intervals"]["class"]
        assert abs(cls["alpha"] - 0.25) < 1e-12 and cls["images"] == 5 and cls["sufficient"]
        klass = value_of(page, "alpha", "Class (nominal)")
        assert klass == f"0.250 [{cls['low']:.3f}, {cls['high']:.3f}] · 5 images", klass
        assert page.locator('#chart-alpha g[data-label="Class (nominal)"] line.whisker').count() == 3
        assert value_of(page, "alpha", "Class (taxonomy)").startswith("0.250 [")
        skin = page.locator('#chart-alpha g[data-label="Fitzpatrick skin type"]')
        assert "insufficient" in skin.get_attribute("class")  # marked, not hidden
        assert value_of(page, "alpha", "Fitzpatrick skin type").endswith("· 4 images · too few (< 5)")
        assert "Class (nominal): 0.250, 95 % interval" in page.locator("#chart-alpha-desc").text_content()
        # quality by skin type: class alpha, gold accuracy, AI agreement side by side
        assert value_of(page, "stratum-fitzpatrick", "I", "Class alpha") == "1.000 · too few images"
        assert value_of(page, "stratum-fitzpatrick", "V", "Class alpha") == "-0.500 · too few images"
        assert value_of(page, "stratum-fitzpatrick", "V", "AI agreement") == "0.500"
        assert value_of(page, "stratum-fitzpatrick", "I", "AI agreement") == "1.000"
        assert page.locator('#chart-stratum-fitzpatrick g[data-label="I"] text.missing').count() == 1  # no gold
        assert value_of(page, "stratum-body_site", "trunk", "Class alpha") == "-0.500 · too few images"
        # region agreement per label and per pair, the pair by name
        assert value_of(page, "regions", "lesion") == "0.500 · too few images"
        pair = f"{NAMES['ann1']} & {NAMES['ann2']}"
        assert value_of(page, "region-pairs", pair) == "0.500 · too few images"
        # AI per model version, imported labels apart
        assert value_of(page, "ai-models", "derm-net 2.1", "Acceptance") == "0.750"
        assert value_of(page, "ai-models", "derm-net 2.1", "Agreement") == "0.750"
        assert value_of(page, "ai-models", "derm-net 2.1", "Cohen's kappa") == "0.500"
        assert value_of(page, "ai-models", "import:legacy labels", "Acceptance") == "1.000"
        assert page.locator("#chart-ai-models text.heading").all_text_contents() == ["Models", "Imported labels"]
        # every chart is an image with a name and a text alternative; the tables and CSV stay
        for svg in page.locator("svg.chart").all():
            assert svg.get_attribute("role") == "img"
            assert page.locator(f"#{svg.get_attribute('aria-labelledby')}").text_content()
            assert page.locator(f"#{svg.get_attribute('aria-describedby')}").text_content()
        assert "AI agreement" in page.locator("#ai_agreement h3").inner_text()
        assert page.locator("#agreement_alpha table tbody tr").count() == 4  # class twice, two descriptors
        assert page.locator("#quality_by_stratum table tbody tr").count() == 4
        with page.expect_download() as download:
            page.locator("#agreement_alpha a.csv").click()
        assert download.value.suggested_filename == f"agreement_alpha-project-{world['project']}.csv"
        # full precision in the CSV, rounded on the page
        assert "0.25" in open(download.value.path()).read()
        # with every chart and table filled: labelled controls, readable contrast
        page.set_viewport_size({"width": 1280, "height": 800})
        assert page.evaluate(AUDIT) == {"bad": [], "unlabelled": []}


def test_people_by_name_and_times_in_the_viewers_locale(app_server, world):
    with signed_in_page(app_server.url, world["emails"]["ana"], PASSWORD, locale="de-DE",
                        timezone_id="Europe/Berlin") as page:
        page.goto(f"/dashboard?project={world['project']}&period=7d")
        people = page.locator("#annotators-in-period tbody th").all_inner_texts()
        assert sorted(people) == [NAMES["ann1"], NAMES["ann2"]]
        daily = page.locator("#annotator_daily table").inner_text()
        assert NAMES["ann1"] in daily and NAMES["ann2"] in daily
        shown = set(page.locator('#annotator_daily tbody span[title^="person "]').all_inner_texts())
        assert shown == {NAMES["ann1"], NAMES["ann2"]}  # not their ids
        pairs = page.locator("#agreement_pair table").inner_text()
        assert NAMES["ann1"] in pairs and NAMES["ann2"] in pairs
        refreshed = page.locator("time#refreshed-at")
        assert refreshed.get_attribute("datetime").startswith(str(datetime.now(timezone.utc).year))
        assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}", refreshed.inner_text()), refreshed.inner_text()
        day = page.locator("#annotator_daily tbody time").first
        assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", day.inner_text()) and "T" not in day.inner_text()


def test_the_period_changes_the_throughput(app_server, world):
    today = datetime.now(timezone.utc).date().isoformat()
    with signed_in_page(app_server.url, world["emails"]["admin"], PASSWORD) as page:
        page.goto(f"/dashboard?project={world['project']}")
        totals = page.locator("#period-totals [data-total=submitted] strong")
        assert page.locator(".period a[aria-current]").inner_text() == "30 days" and totals.inner_text() == "10"
        page.get_by_role("link", name="Today", exact=True).click()
        assert page.locator(".period a[aria-current]").inner_text() == "Today"
        assert totals.inner_text() == "8"  # image 5's two reads were three days ago
        assert page.locator("#period-totals [data-total=approved] strong").inner_text() == "8"
        # one day is drawn per hour: 24 narrow groups, never one bar across the chart
        bars = page.locator("#chart-throughput rect[class^=s]:has(title)")
        assert bars.count() == 48
        widths = [float(w) for w in bars.evaluate_all("rs => rs.map(r => r.getAttribute('width'))")]
        assert max(widths) <= 18
        assert "Activity · today" in page.locator("#h-activity").inner_text()
        page.get_by_role("link", name="7 days", exact=True).click()
        assert totals.inner_text() == "10"
        assert page.locator("#annotator_daily tbody tr").count() == 4  # two annotators, two days
        page.get_by_label("From", exact=True).fill("2020-01-01")
        page.get_by_label("To", exact=True).fill("2020-01-31")
        page.get_by_role("button", name="Show").click()
        assert "period=custom" in page.url and "from=2020-01-01" in page.url
        assert totals.inner_text() == "0"
        assert page.locator("#throughput .empty").inner_text() == "No data in this period."
        assert "2020-01-01 to 2020-01-31" in page.locator("#h-activity").inner_text()
        page.goto(f"/dashboard?project={world['project']}&period=custom&from={today}&to={today}")
        assert totals.inner_text() == "8" and page.locator("#chart-throughput rect:has(title)").count() == 48
        # a bad date: a 400 page that says what is wrong, with the period controls to fix it
        r = page.goto(f"/dashboard?project={world['project']}&period=custom&from=2020-02-30&to=2020-03-01")
        assert r.status == 400
        assert "'2020-02-30' is not a day of the calendar" in page.get_by_role("alert").inner_text()
        assert page.get_by_label("From", exact=True).get_attribute("aria-invalid") == "true"


def test_navigation_and_sign_out_on_the_dashboard_and_the_api_page(app_server, world):
    with signed_in_page(app_server.url, world["emails"]["admin"], PASSWORD) as page:
        for path in (f"/dashboard?project={world['project']}", "/schema"):
            page.goto(path)
            nav = page.get_by_role("navigation", name="Main")
            assert nav.get_by_role("link", name="Admin").is_visible()
            assert nav.get_by_role("link", name="Metrics").is_visible()
            assert nav.get_by_role("link", name="API").is_visible()
            assert page.locator("header.top .who").inner_text().startswith(NAMES["admin"])
            assert page.get_by_role("button", name="Sign out").is_visible()
        assert nav.get_by_role("link", name="API").get_attribute("aria-current") == "page"
        nav.get_by_role("link", name="Metrics").click()  # from the API page back into the app
        page.wait_for_url(re.compile(r"/dashboard"))
        assert page.locator("h1").inner_text().startswith("Metrics · ")
        page.goto("/schema")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login"))
        page.goto(f"/dashboard?project={world['project']}")
        assert "/login?next=" in page.url  # signed out: the dashboard asks to sign in again
        page.goto("/schema")
        assert page.get_by_role("link", name="Sign in").is_visible()


def test_refresh_now_for_admins_only(app_server, world, database_url):
    with signed_in_page(app_server.url, world["emails"]["ana"], PASSWORD) as page:
        page.goto(f"/dashboard?project={world['project']}")
        assert page.locator("h1").is_visible()
        assert page.get_by_role("button", name="Refresh now").count() == 0
        assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").count() == 0
    with signed_in_page(app_server.url, world["emails"]["admin"], PASSWORD) as page:
        page.goto(f"/dashboard?project={world['project']}")
        before = page.locator("time#refreshed-at").get_attribute("datetime")
        with page.expect_navigation():
            page.get_by_role("button", name="Refresh now").click()
        after = page.locator("time#refreshed-at").get_attribute("datetime")
        assert after > before
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit.event WHERE action = 'refresh_metrics' AND actor_id = %s",
                            (world["admin"],)).fetchone()[0] == 1
