"""DICOM in the annotator workspace (headless Chromium): the file's window, presets, window/level by drag, and
frame scrolling — each checked by what the canvas shows, not only by the readouts."""
from __future__ import annotations

import uuid

import httpx
import psycopg
import pydicom
import pytest
from playwright.sync_api import expect

from browser import screenshot, signed_in_page
from dicom_files import Orthanc, bundled, vl_photograph
from sqlcall import PASSWORD, make_project
from test_http_rpc import token

# mean brightness of the middle of the stage, read from the canvas the viewer draws on
CENTRE_MEAN = """() => {
  const c = document.getElementById('canvas');
  const d = c.getContext('2d').getImageData(c.width / 2 - 20, c.height / 2 - 20, 40, 40).data;
  let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
  return s / (d.length / 4 * 3);
}"""


def dicom_project(app_server, database_url, files):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=0, annotators=1, reviewers=0)
        w["admin_email"] = conn.execute('SELECT email FROM auth."user" WHERE id = %s', (w["admin"],)).fetchone()[0]
    if not files:
        return w
    with httpx.Client(base_url=app_server.url, timeout=60) as c:
        r = c.post(f"/projects/{w['project']}/images", headers=token(c, database_url, w["admin"]),
                   files=[("files", (n, raw, "application/dicom")) for n, raw in files])
        assert r.status_code == 200, r.text
    return w


def test_window_level_presets_and_drag_on_a_ct(app_server, database_url, tmp_path):
    w = dicom_project(app_server, database_url, [("ct.dcm", bundled("CT_small.dcm"))])
    with signed_in_page(app_server.url, w["annotator_emails"][0], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"/work?project={w['project']}")
        expect(page.locator("#start-btn")).to_be_enabled()
        page.keyboard.press("Enter")
        expect(page.locator("#dicom-controls")).to_be_visible()
        expect(page.locator("#frame-controls")).to_be_hidden()  # one frame: no slider
        expect(page.locator("#wl-value")).to_have_text("C 136 · W 2064")  # the file's range (no window in it)
        options = page.locator("#wl-preset option").all_inner_texts()
        assert options[0].startswith("File") and any(o.startswith("Bone") for o in options)
        page.wait_for_timeout(100)
        default = page.evaluate(CENTRE_MEAN)
        page.locator("#canvas").focus()
        page.keyboard.press("Shift+W")  # next preset: full range
        page.keyboard.press("Shift+W")  # soft tissue 40/400: most of a CT above 240 HU turns white
        expect(page.locator("#wl-value")).to_have_text("C 40 · W 400")
        page.wait_for_timeout(100)
        soft = page.evaluate(CENTRE_MEAN)
        assert soft != pytest.approx(default, abs=5), (default, soft)
        # right-drag: wider window, lower contrast
        box = page.locator("#canvas").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down(button="right")
        page.mouse.move(x + 120, y + 40, steps=6)
        page.mouse.up(button="right")
        value = page.locator("#wl-value").inner_text()
        centre, width = (float(p.split()[1]) for p in value.split(" · "))
        assert width > 400 and centre > 40, value
        page.keyboard.press("0")  # reset: back to the file's window
        expect(page.locator("#wl-value")).to_have_text("C 136 · W 2064")
        screenshot(page, tmp_path, "dicom-ct")
        assert not errors, errors


def test_frames_of_a_cine_loop_scroll_with_keys_and_slider(app_server, database_url):
    w = dicom_project(app_server, database_url, [("us.dcm", bundled("examples_ybr_color.dcm"))])
    with signed_in_page(app_server.url, w["annotator_emails"][0], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        frames: list[str] = []
        page.on("request", lambda r: frames.append(r.url) if "/frames/" in r.url else None)
        page.goto(f"/work?project={w['project']}")
        expect(page.locator("#start-btn")).to_be_enabled()
        page.keyboard.press("Enter")
        expect(page.locator("#frame-value")).to_have_text("1 / 30")
        page.locator("#canvas").focus()
        page.keyboard.press("]")
        page.keyboard.press("]")
        expect(page.locator("#frame-value")).to_have_text("3 / 30")
        page.keyboard.press("[")
        expect(page.locator("#frame-value")).to_have_text("2 / 30")
        page.locator("#frame").fill("30")
        expect(page.locator("#frame-value")).to_have_text("30 / 30")
        assert {u.rsplit("/", 1)[1] for u in frames} >= {"0", "1", "2", "29"}
        # and the image is annotated like any other: class, submit
        page.locator("#class-search").fill("Melanoma")
        expect(page.locator("#class-results li").first).to_contain_text("Melanoma")
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        expect(page.locator("#start-btn")).to_be_visible()  # back to the start: nothing left in the queue
    with psycopg.connect(database_url) as conn:
        status, cls = conn.execute(
            "SELECT w.status::text, r.class_id FROM core.work_item w JOIN core.annotation_revision r "
            "ON r.item_id = w.id WHERE w.project_id = %s", (w["project"],)).fetchone()
    assert (status, cls) == ("review", w["class"])


def test_an_admin_finds_and_imports_series_from_a_pacs(app_server, database_url, tmp_path):
    pacs = Orthanc()
    try:
        study = pydicom.uid.generate_uid()
        for colour in ((200, 100, 90), (120, 80, 70)):
            pacs.store(vl_photograph(colour, study_uid=study))
        pacs.store(bundled("CT_small.dcm"))
        w = dicom_project(app_server, database_url, [])
        with signed_in_page(app_server.url, w["admin_email"], PASSWORD) as page:
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"/admin?project={w['project']}#pacs")
            page.fill("#pacs-source input[name=base_url]", pacs.dicomweb)
            page.click("#pacs-source button")
            expect(page.locator("#pacs-status")).to_contain_text("Saved")
            page.fill("#pacs-search input[name=modality]", "xc")
            page.click("#pacs-search button")
            expect(page.locator("#pacs-status")).to_have_text("2 series")
            expect(page.locator("#pacs-rows tr")).to_have_count(2)
            expect(page.locator("#pacs-rows")).to_contain_text("SKIN")
            page.check("#pacs-all")
            expect(page.locator("#pacs-import")).to_have_text("Import 2 series")
            page.click("#pacs-import")
            expect(page.locator("#pacs-status")).to_have_text("Imported 2 image(s)", timeout=20_000)
            screenshot(page, tmp_path, "admin-pacs")
            page.reload()  # the URL was kept
            expect(page.locator("#pacs-source input[name=base_url]")).to_have_value(pacs.dicomweb)
        with psycopg.connect(database_url) as conn:
            n, = conn.execute("SELECT count(*) FROM core.image WHERE project_id = %s AND metadata ? 'dicom'",
                              (w["project"],)).fetchone()
        assert n == 2
    finally:
        pacs.stop()
