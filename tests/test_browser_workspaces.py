"""The annotator and reviewer workspaces in headless Chromium, end to end: type-ahead classification, descriptors,
a drawn box, autosave that survives a reload, submit; changes requested with a comment; the annotator sees it,
edits, resubmits; the reviewer approves. Plus sign-in, the role-aware 403 page and the shortcut list."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from playwright.sync_api import expect

from ai_services import irregular_lesion
from browser import screenshot, signed_in_page
from sqlcall import PASSWORD, act, call, make_team


@pytest.fixture(scope="module")
def ws(database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "ui", ann=["annotator"], ann2=["annotator"], ann3=["annotator"], rev=["reviewer"])
        project, admin, ann, ann2, ann3 = (team[k] for k in ("project", "admin", "ann", "ann2", "ann3"))
        call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="NEO", name="Neoplasms")
        mel = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="MEL", name="Melanoma",
                   parent_code="NEO", synonyms=["malignant melanoma"])["id"]
        nv = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="NV",
                  name="Melanocytic nevus", parent_code="NEO", synonyms=["mole"])["id"]
        call(conn, admin, "admin", "set_descriptor_schema", project_id=project, fields=[
            {"key": "colours", "label": "Colours", "kind": "multi", "required": True,
             "options": ["light_brown", "dark_brown", "black", "blue_grey"]},
            {"key": "border", "label": "Border", "kind": "single", "options": ["regular", "irregular"]}])
        # one image for each annotator (private pools), so the tests do not take each other's work
        for who, source, size in ((ann, "clinic", 600), (ann2, "derm", 500), (ann3, "pf", 520), (ann3, "pf", 540)):
            if size != 540:
                call(conn, admin, "admin", "create_work_rule", project_id=project, name=source, max_items=10,
                     source_classes=[source], pool_user_ids=[who])
            png = irregular_lesion(size)[0]
            sha = hashlib.sha256(png).hexdigest()
            key = f"images/{project}/{sha}.png"
            path = Path(os.environ["DL_DATA_DIR"]) / "images" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
            side = Image.open(io.BytesIO(png)).size[0]
            with conn.transaction():
                act(conn, admin, "admin")
                conn.execute("SELECT api.register_image(%s, %s, %s, %s, %s, 'image/png', %s)",
                             (project, key, sha, side, side, source))
    return {"project": project, **{k: team["emails"][k] for k in ("ann", "ann2", "ann3", "rev")},
            "mel": mel, "nv": nv, "db": database_url}


def item_state(ws, source: str = "clinic") -> tuple:
    with psycopg.connect(ws["db"]) as conn:
        return conn.execute("SELECT w.status::text, w.last_revision_seq FROM core.work_item w "
                            "JOIN core.image i ON i.id = w.image_id WHERE w.project_id = %s AND i.source_class = %s",
                            (ws["project"], source)).fetchone()


def test_annotate_review_edit_approve_in_the_browser(app_server, ws, tmp_path):
    url = app_server.url
    with signed_in_page(url, ws["ann"], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"/work?project={ws['project']}")
        expect(page.locator("#start-btn")).to_be_enabled()  # the page is ready
        page.keyboard.press("Enter")  # Start
        expect(page.locator("#annotation")).to_be_visible()
        page.locator("#class-search").fill("malignant mel")  # a synonym
        expect(page.locator("#class-results li").first).to_contain_text("Melanoma")
        page.keyboard.press("Enter")
        expect(page.locator("#class-current")).to_have_text("Melanoma (MEL)")
        page.check("#descriptors input[value=black]")
        page.select_option("#d-border", "irregular")
        page.keyboard.press("Escape")
        page.locator("#canvas").focus()
        page.click("input[name=tool][value=bbox]")
        box = page.locator("#canvas").bounding_box()
        page.mouse.move(box["x"] + 200, box["y"] + 150)
        page.mouse.down()
        page.mouse.move(box["x"] + 330, box["y"] + 300, steps=6)
        page.mouse.up()
        expect(page.locator("#regions li")).to_have_count(1)
        expect(page.locator("#save-state")).to_contain_text("Saved", timeout=15000)

        page.reload()  # the draft survives: the held item reopens with it
        expect(page.locator("#annotation")).to_be_visible()
        expect(page.locator("#save-state")).to_have_text("Draft restored")
        expect(page.locator("#class-current")).to_have_text("Melanoma (MEL)")
        expect(page.locator("#descriptors input[value=black]")).to_be_checked()
        expect(page.locator("#regions li")).to_have_count(1)
        assert screenshot(page, tmp_path, "annotator-workspace").stat().st_size > 10_000
        page.keyboard.press("Control+Enter")
        expect(page.locator("#start-message")).to_contain_text("Nothing to annotate")
        assert item_state(ws) == ("review", 1)
        assert not errors, errors

    with signed_in_page(url, ws["rev"], PASSWORD) as page:
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.goto(f"/review?project={ws['project']}")
        expect(page.locator("#start-btn")).to_be_enabled()
        page.keyboard.press("Enter")
        expect(page.locator("#annotation")).to_contain_text("Melanoma (MEL)")
        expect(page.locator("#annotation")).to_contain_text("irregular")
        # the annotator's labels and form order, not raw keys: "Colours" before "Border", "dark brown" not dark_brown
        expect(page.locator("#annotation dt").nth(1)).to_have_text("Colours")
        expect(page.locator("#annotation dt").nth(2)).to_have_text("Border")
        assert "_" not in page.locator("#annotation dd").nth(1).inner_text()
        assert screenshot(page, tmp_path, "reviewer-workspace").stat().st_size > 10_000
        page.click("#changes-btn")  # without a comment: refused, nothing sent
        expect(page.locator("#decision-error")).to_be_visible()
        assert item_state(ws) == ("review", 1)
        page.fill("#comment", "Blue-grey areas are present: add them to the colours.")
        page.click("#changes-btn")
        expect(page.locator("#start-message")).to_contain_text("Nothing to review")
        expect(page.locator("#canvas")).to_be_hidden()  # the decided item's image is not left on screen
        assert item_state(ws) == ("edits_requested", 1)

    with signed_in_page(url, ws["ann"], PASSWORD) as page:
        page.goto(f"/work?project={ws['project']}")  # an item sent back opens at once
        expect(page.locator("#review-comment")).to_contain_text("Blue-grey areas are present")
        expect(page.locator("#class-current")).to_have_text("Melanoma (MEL)")
        page.check("#descriptors input[value=blue_grey]")
        page.click("#submit-btn")
        expect(page.locator("#start-message")).to_contain_text("Nothing to annotate")
        assert item_state(ws) == ("review", 2)

    with signed_in_page(url, ws["rev"], PASSWORD) as page:
        page.goto(f"/review?project={ws['project']}")
        page.click("#start-btn")
        expect(page.locator("#history")).to_contain_text("Colours: ")  # the diff between revisions 1 and 2
        expect(page.locator("#history")).to_contain_text("blue grey")
        page.locator("body").press("a")
        expect(page.locator("#start-message")).to_contain_text("Nothing to review")
        assert item_state(ws) == ("done", 2)


def test_invalid_content_is_shown_beside_the_field_and_changes_nothing(app_server, ws):
    with signed_in_page(app_server.url, ws["ann2"], PASSWORD) as page:
        page.goto(f"/work?project={ws['project']}")
        expect(page.locator("#start-btn")).to_be_enabled()
        page.keyboard.press("?")
        expect(page.locator("#help")).to_be_visible()
        expect(page.locator("#help")).to_contain_text("Ctrl+Enter")
        page.keyboard.press("Escape")
        page.click("#start-btn")
        expect(page.locator("#annotation")).to_be_visible()
        page.click("#submit-btn")  # no class yet: said at once, nothing sent
        expect(page.locator("#class-error")).to_have_text("Choose a class first.")
        page.locator("#class-search").fill("mole")
        expect(page.locator("#class-results li").first).to_contain_text("Melanocytic nevus")
        page.keyboard.press("Enter")
        page.click("#submit-btn")  # the SQL refuses: colours are required, and the message lands beside them
        err = page.locator('[data-key="colours"] .field-error')
        expect(err).to_be_visible()
        expect(err).to_contain_text("required")
        assert item_state(ws, "derm") == ("in_progress", 0)


def test_the_next_image_is_fetched_while_the_current_one_is_annotated(app_server, ws):
    with psycopg.connect(ws["db"]) as conn:
        second = conn.execute("SELECT max(id) FROM core.image WHERE project_id = %s AND source_class = 'pf'",
                              (ws["project"],)).fetchone()[0]
    with signed_in_page(app_server.url, ws["ann3"], PASSWORD) as page:
        page.goto(f"/work?project={ws['project']}")
        with page.expect_request(lambda r: r.url.endswith(f"/images/{second}")):
            page.click("#start-btn")
        expect(page.locator("#annotation")).to_be_visible()
    with psycopg.connect(ws["db"]) as conn:
        states = conn.execute("SELECT i.id, w.status::text FROM core.work_item w JOIN core.image i ON i.id = w.image_id "
                              "WHERE w.project_id = %s AND i.source_class = 'pf' ORDER BY i.id",
                              (ws["project"],)).fetchall()
    assert states == [(second - 1, "in_progress"), (second, "new")], "the prefetched image's item is not taken"


def test_sign_in_page_and_role_aware_pages(app_server, ws):
    from playwright.sync_api import sync_playwright

    from browser import ARGS, CHROMIUM
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(base_url=app_server.url)
            page.goto(f"/work?project={ws['project']}")
            expect(page).to_have_url(f"{app_server.url}/login?next=/work%3Fproject%3D{ws['project']}")
            page.fill("#email", ws["rev"])
            page.fill("#password", "wrong password")
            page.click("button[type=submit]")
            expect(page.locator("#login-error")).to_be_visible()
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            # a reviewer asked for the annotator page: a clear 403 page, and navigation only to their own pages
            expect(page.locator("h1")).to_have_text("Not for your role")
            expect(page.locator("header nav")).to_contain_text("Review")
            expect(page.locator("header nav")).not_to_contain_text("Annotate")
            r = page.goto(f"/review?project={ws['project']}")
            assert r.status == 200
            r = page.goto("/review?project=999999")
            assert r.status == 403 and "Not your project" in page.content()
            page.click("#logout")
            expect(page).to_have_url(f"{app_server.url}/login")
        finally:
            browser.close()
