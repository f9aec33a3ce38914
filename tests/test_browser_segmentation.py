"""Segmentation in the workspaces, in headless Chromium against the real app and PostgreSQL (docs/segmentation.md):
rle.js against pycocotools both ways; brush, eraser, undo and redo of a mask, saved, reloaded and compared bit for
bit with the RLE the database stored; the measuring line kept as a line region with its length in mm and the lesion
diameter filling the Diameter descriptor; the AI's suggested mask ignored (never saved) and accepted; click-to-segment
(positive and negative click, accept, save; and the message when the service is off); the reviewer seeing the mask
on the canvas and the Dice between revisions; the admin's region labels edited from the keyboard."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from PIL import Image
from playwright.sync_api import expect
from psycopg.types.json import Jsonb
from pycocotools import mask as coco

from ai_services import irregular_lesion, start_reference, stop
from browser import screenshot, signed_in_page
from conftest import JWT_SECRET, start_app, stop_app
from sqlcall import PASSWORD, act, call, make_team

# the first mask region the page holds: its size, area and bytes (row-major 0/1), base64
PAGE_MASK = """() => {
  const v = document.getElementById('canvas').viewer;
  const r = v.regions.find((x) => x.type === 'mask');
  if (!r) return null;
  const d = r.mask.data; let s = '';
  for (let i = 0; i < d.length; i += 32768) s += String.fromCharCode.apply(null, d.subarray(i, i + 32768));
  return { width: r.mask.width, height: r.mask.height, area: r.mask.area, label: r.label, bytes: btoa(s) };
}"""
MASK_AREA = "() => document.getElementById('canvas').viewer.regions.find((x) => x.type === 'mask')?.mask.area ?? -1"


def page_mask(page) -> tuple[np.ndarray, dict]:
    m = page.evaluate(PAGE_MASK)
    assert m, "no mask region in the page"
    bits = np.frombuffer(base64.b64decode(m["bytes"]), np.uint8).reshape(m["height"], m["width"])
    return bits, m


def decoded(rle: dict) -> np.ndarray:
    return coco.decode({"size": rle["size"], "counts": rle["counts"].encode()})


def register(conn, admin: int, project: int, png: bytes, source: str, metadata: dict | None = None) -> int:
    sha = hashlib.sha256(png).hexdigest()
    key = f"images/{project}/{sha}.png"
    path = Path(os.environ["DL_DATA_DIR"]) / "images" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    w, h = Image.open(io.BytesIO(png)).size
    with conn.transaction():
        act(conn, admin, "admin")
        image = conn.execute("SELECT (api.register_image(%s, %s, %s, %s, %s, 'image/png', %s) ->> 'id')::bigint",
                             (project, key, sha, w, h, source)).fetchone()[0]
    if metadata:
        conn.execute("UPDATE core.image SET metadata = metadata || %s WHERE id = %s", (Jsonb(metadata), image))
        conn.commit()
    return image


@pytest.fixture(scope="module")
def seg(database_url):
    with psycopg.connect(database_url) as conn:
        people = {w: ["annotator"] for w in ("brush", "measure", "ai", "clicks", "off")}
        team = make_team(conn, "seg", rev=["reviewer"], **people)
        project, admin = team["project"], team["admin"]
        call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="MEL", name="Melanoma")
        call(conn, admin, "admin", "set_descriptor_schema", project_id=project, fields=[
            {"key": "diameter_mm", "label": "Diameter", "kind": "number", "min": 0, "max": 300, "unit": "mm"}])
        png, _ = irregular_lesion(600)
        images = {}
        for who in people:  # an image of one's own for each annotator (private pools): no test takes another's
            call(conn, admin, "admin", "create_work_rule", project_id=project, name=who, max_items=10,
                 source_classes=[who], pool_user_ids=[team[who]])
            # the same picture, made distinct by one pixel (an image's bytes are stored once per project)
            img = Image.open(io.BytesIO(png)).convert("RGB")
            img.putpixel((0, 0), (len(images), 0, 0))
            out = io.BytesIO()
            img.save(out, "PNG")
            images[who] = register(conn, admin, project, out.getvalue(), who,
                                   {"pixels_per_mm": 20} if who == "measure" else None)
    return {"project": project, "admin": admin, "emails": team["emails"], "images": images, "db": database_url}


def item_of(seg, who: str) -> tuple[int, str, dict | None]:
    """The item of that annotator's image: id, status, and the regions of its draft (else latest revision)."""
    with psycopg.connect(seg["db"]) as conn:
        return conn.execute(
            "SELECT w.id, w.status::text, coalesce(d.content, r.content) -> 'regions' FROM core.work_item w "
            "LEFT JOIN core.annotation_draft d ON d.item_id = w.id "
            "LEFT JOIN LATERAL (SELECT content FROM core.annotation_revision x WHERE x.item_id = w.id "
            "                   ORDER BY revision_seq DESC LIMIT 1) r ON true WHERE w.image_id = %s",
            (seg["images"][who],)).fetchone()


def stored_as_drawn(page, seg, who: str, seconds: float = 20) -> list:
    """Waits until the item's stored draft has exactly the regions the page holds (autosave runs every 4 s)."""
    expect(page.locator("#save-state")).to_contain_text("Saved", timeout=seconds * 1000)
    drawn = page.evaluate("document.getElementById('canvas').viewer.serialise()")
    deadline = time.monotonic() + seconds
    while (regions := item_of(seg, who)[2]) != drawn:
        assert time.monotonic() < deadline, ("the draft never caught up with the page", regions, drawn)
        time.sleep(0.25)
    return regions


def open_item(page, seg) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/work?project={seg['project']}")
    # either the held item reopens by itself, or the start panel waits with its button focused
    page.wait_for_function("!document.getElementById('annotation').hidden || (!document.getElementById('start').hidden"
                           " && document.activeElement === document.getElementById('start-btn'))")
    if page.locator("#annotation").is_hidden():
        page.keyboard.press("Enter")
    expect(page.locator("#annotation")).to_be_visible()
    page.wait_for_function("document.getElementById('canvas').viewer?.img?.naturalWidth > 0")
    page.locator("#canvas").focus()


def stage_point(page, fx: float, fy: float) -> tuple[float, float]:
    """The page coordinates of the image point (fx, fy) given as fractions of the image's width and height."""
    return tuple(page.evaluate("""([fx, fy]) => {
      const c = document.getElementById('canvas'), v = c.viewer, r = c.getBoundingClientRect();
      return [r.left + v.tx + fx * v.img.naturalWidth * v.scale, r.top + v.ty + fy * v.img.naturalHeight * v.scale];
    }""", [fx, fy]))


def drag(page, a: tuple[float, float], b: tuple[float, float], steps: int = 12) -> None:
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=steps)
    page.mouse.up()


def image_point(page, x: float, y: float) -> tuple[int, int]:
    """The image pixel under page coordinates (x, y)."""
    return tuple(page.evaluate("""([x, y]) => {
      const v = document.getElementById('canvas').viewer;
      return v.toImage({ clientX: x, clientY: y }).map(Math.floor);
    }""", [x, y]))


# -- rle.js ----------------------------------------------------------------------------------------------------------
def test_rle_js_agrees_with_pycocotools_both_ways(app_server):
    rng = np.random.default_rng(2024)
    masks = [np.zeros((1, 1), np.uint8), np.ones((1, 1), np.uint8), np.zeros((7, 5), np.uint8),
             np.ones((5, 7), np.uint8)]
    first = np.zeros((9, 4), np.uint8)
    first[0, 0] = 1  # the first pixel set: counts start with a run of 0
    wrap = np.zeros((10, 10), np.uint8)
    wrap[9, 2] = wrap[0, 3] = 1  # one run from a column's bottom to the next column's top
    masks += [first, wrap]
    for h, w, p in ((3, 4, 0.5), (40, 60, 0.02), (40, 60, 0.97), (120, 90, 0.5), (300, 200, 0.3), (1, 500, 0.5),
                    (500, 1, 0.5)):
        masks.append((rng.random((h, w)) < p).astype(np.uint8))
    yy, xx = np.mgrid[:480, :640]
    blob = ((yy - 240) ** 2 / 150 ** 2 + (xx - 300) ** 2 / 200 ** 2 < 1).astype(np.uint8)
    blob[200:260, 280:330] = 0  # a hole
    masks.append(blob)
    # real masks: the reference service's lesion segmentation of a ragged multi-coloured lesion
    from app.ai_reference import segment
    real = segment.lesion_mask(segment.working_copy(segment.load(irregular_lesion(600)[0]))[0]).astype(np.uint8)
    assert real.sum() > 1000
    masks += [real, np.ascontiguousarray(real[::-1, ::-1])]
    cases = [{"h": m.shape[0], "w": m.shape[1], "bytes": base64.b64encode(m.tobytes()).decode(),
              "counts": coco.encode(np.asfortranarray(m))["counts"].decode(), "area": int(m.sum())} for m in masks]
    # pairs for the Dice
    a, b = blob, (rng.random((480, 640)) < 0.4).astype(np.uint8)
    blob_counts = coco.encode(np.asfortranarray(a))["counts"].decode()
    cases.append({"h": 480, "w": 640, "bytes": base64.b64encode(b.tobytes()).decode(),
                  "counts": coco.encode(np.asfortranarray(b))["counts"].decode(), "area": int(b.sum())})
    with _anonymous(app_server) as page:
        page.goto("/login")
        out = page.evaluate("""async (cases) => {
          const rle = await import('/static/js/rle.js');
          return cases.map((c) => {
            const bits = Uint8Array.from(atob(c.bytes), (ch) => ch.charCodeAt(0));
            const enc = rle.encode(bits, c.w, c.h);
            const dec = rle.decode({ size: [c.h, c.w], counts: c.counts });
            let same = dec.data.length === bits.length;
            for (let i = 0; same && i < bits.length; i++) same = dec.data[i] === bits[i];
            return { counts: enc.counts, size: enc.size, decodedSame: same, area: rle.area({ size: [c.h, c.w], counts: c.counts }) };
          });
        }""", cases)
        dice = page.evaluate("""async ([a, b]) => (await import('/static/js/rle.js')).dice(a, b)""",
                             [{"size": [480, 640], "counts": blob_counts},
                              {"size": [480, 640], "counts": cases[-1]["counts"]}])
    for c, o in zip(cases, out):
        assert o["counts"] == c["counts"], (c["h"], c["w"])  # JS encode == pycocotools encode
        assert o["size"] == [c["h"], c["w"]]
        assert o["decodedSame"], (c["h"], c["w"])            # JS decode of pycocotools' string == the mask
        assert o["area"] == c["area"]
    inter = float((a & b).sum())
    assert dice == pytest.approx(2 * inter / (a.sum() + b.sum()), abs=1e-12)


class _anonymous:
    """A page with no session (the static modules are public)."""

    def __init__(self, server):
        self.server = server

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        from browser import ARGS, CHROMIUM
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        return self.browser.new_page(base_url=self.server.url)

    def __exit__(self, *exc):
        self.browser.close()
        self.pw.stop()


# -- brush, eraser, undo, redo, save, reload ------------------------------------------------------------------------
def test_brush_erase_undo_redo_then_the_database_holds_the_drawn_mask(app_server, seg, tmp_path):
    with signed_in_page(app_server.url, seg["emails"]["brush"], PASSWORD) as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        open_item(page, seg)
        expect(page.locator("#mask-label")).to_have_value("lesion")  # the project's labels, lesion first
        page.keyboard.press("k")
        page.keyboard.press("]")  # a larger brush
        expect(page.locator("#brush-value")).to_have_text("30 px")
        a, b = stage_point(page, 0.35, 0.45), stage_point(page, 0.6, 0.55)
        drag(page, a, b)
        expect(page.locator("#regions li")).to_have_count(1)
        expect(page.locator("#regions li .sel")).to_contain_text("mask")
        painted = page.evaluate(MASK_AREA)
        assert painted > 500
        mid = image_point(page, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2)

        page.keyboard.press("e")  # erase across the middle of the stroke
        c = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        drag(page, (c[0], c[1] - 40), (c[0], c[1] + 40), steps=6)
        erased = page.evaluate(MASK_AREA)
        assert 0 < erased < painted
        bits, _ = page_mask(page)
        assert bits[mid[1], mid[0]] == 0

        page.keyboard.press("Control+z")  # undo the eraser: the stroke is whole again
        assert page.evaluate(MASK_AREA) == painted
        assert page_mask(page)[0][mid[1], mid[0]] == 1
        page.keyboard.press("Control+z")  # undo the brush: no mask region left
        expect(page.locator("#regions li")).to_have_count(0)
        page.keyboard.press("Control+Shift+Z")  # redo both
        page.keyboard.press("Control+Shift+Z")
        expect(page.locator("#regions li")).to_have_count(1)
        assert page.evaluate(MASK_AREA) == erased
        expect(page.locator("#measurements")).to_contain_text("area")  # measured by the database
        regions = stored_as_drawn(page, seg, "brush")
        drawn, info = page_mask(page)
        assert info["label"] == "lesion"
        item, status, _ = item_of(seg, "brush")
        assert status == "in_progress"
        masks = [r for r in regions if r["type"] == "mask"]
        assert len(masks) == 1 and masks[0]["label"] == "lesion" and masks[0]["rle"]["size"] == [600, 600]
        stored = decoded(masks[0]["rle"])
        assert np.array_equal(stored, drawn), "the stored RLE decodes (pycocotools) to exactly the drawn mask"
        assert coco.encode(np.asfortranarray(drawn))["counts"].decode() == masks[0]["rle"]["counts"]

        # the stored draft, asked of the API as the page does, is the same RLE
        r = page.request.post("/rpc/item_detail", data={"item_id": item},
                              headers={"x-csrf-token": page.evaluate("document.cookie.match(/dl_csrf=([^;]+)/)[1]")})
        assert r.ok, r.text()
        api_masks = [x for x in r.json()["draft"]["regions"] if x["type"] == "mask"]
        assert api_masks[0]["rle"] == masks[0]["rle"]

        page.reload()  # the draft reopens with the same mask
        page.wait_for_function("document.getElementById('canvas').viewer?.regions.some((r) => r.type === 'mask')")
        again, _ = page_mask(page)
        assert np.array_equal(again, drawn)
        assert page.evaluate("document.getElementById('canvas').viewer.serialise()[0].rle.counts") \
            == masks[0]["rle"]["counts"]
        screenshot(page, tmp_path, "annotator-mask")
        # submit, so the reviewer test below has a revision with a mask
        page.locator("#class-search").fill("Melanoma")
        expect(page.locator("#class-results li").first).to_contain_text("Melanoma")
        page.keyboard.press("Enter")
        page.keyboard.press("Control+Enter")
        expect(page.locator("#start-message")).to_contain_text("Nothing to annotate")
        assert not errors, errors
    assert item_of(seg, "brush")[1] == "review"


# -- measuring line, measurements, the Diameter descriptor ----------------------------------------------------------
def test_the_measuring_line_is_kept_and_the_lesion_diameter_fills_the_descriptor(app_server, seg):
    with signed_in_page(app_server.url, seg["emails"]["measure"], PASSWORD) as page:
        open_item(page, seg)
        page.keyboard.press("m")
        a, b = stage_point(page, 0.2, 0.5), stage_point(page, 0.7, 0.5)
        drag(page, a, b, steps=5)
        expect(page.locator("#regions li")).to_have_count(1)
        expect(page.locator("#regions li .sel")).to_contain_text("line")
        expect(page.locator("#regions li .sel")).to_contain_text("mm")  # the image has 20 px per mm
        # a lesion mask: one brush dab; its diameter in mm goes to the Diameter descriptor
        page.keyboard.press("k")
        page.mouse.click(*stage_point(page, 0.45, 0.45))
        expect(page.locator("#measurements")).to_contain_text("line", timeout=10000)
        expect(page.locator("#measurements")).to_contain_text("mm²")
        button = page.locator("#fill-diameter")
        expect(button).to_be_visible()
        mm = float(button.inner_text().split()[1])
        assert mm > 0
        button.click()
        assert float(page.locator("#d-diameter_mm").input_value()) == mm
        regions = stored_as_drawn(page, seg, "measure")
        lines = [r for r in regions if r["type"] == "line"]
        assert len(lines) == 1 and len(lines[0]["points"]) == 2 and "label" not in lines[0]
        (x0, y0), (x1, y1) = lines[0]["points"]
        assert ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5 > 200  # half the 600 px image, give or take the fit
    deadline = time.monotonic() + 20
    with psycopg.connect(seg["db"], autocommit=True) as conn:
        while True:  # the descriptor reaches the draft with the next autosave
            descriptors, = conn.execute("SELECT d.content -> 'descriptors' FROM core.annotation_draft d "
                                        "JOIN core.work_item w ON w.id = d.item_id WHERE w.image_id = %s",
                                        (seg["images"]["measure"],)).fetchone()
            if descriptors.get("diameter_mm") == pytest.approx(mm) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
    assert descriptors.get("diameter_mm") == pytest.approx(mm)


# -- the AI's suggested mask ------------------------------------------------------------------------------------------
def test_the_ai_mask_is_only_saved_when_accepted(app_server, seg):
    yy, xx = np.mgrid[:600, :600]
    suggestion = (((yy - 300) / 120) ** 2 + ((xx - 270) / 150) ** 2 < 1).astype(np.uint8)
    rle = coco.encode(np.asfortranarray(suggestion))
    payload = {"box": {"x": 120, "y": 180, "width": 300, "height": 240}, "lesion_found": True,
               "mask": {"size": [600, 600], "counts": rle["counts"].decode()}}
    with psycopg.connect(seg["db"]) as conn:  # what the crop stage stores (imported like a label: no job)
        conn.execute("INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms) "
                     "VALUES (%s, 'crop', 'reference-crop', 'test', %s, 12)", (seg["images"]["ai"], Jsonb(payload)))
    with signed_in_page(app_server.url, seg["emails"]["ai"], PASSWORD) as page:
        open_item(page, seg)
        expect(page.locator("#candidate-actions")).to_be_visible()
        expect(page.locator("#mask-message")).to_contain_text("The AI outlined the lesion")
        page.keyboard.press("m")  # something else to save, so a draft is written
        drag(page, stage_point(page, 0.1, 0.1), stage_point(page, 0.3, 0.1), steps=3)
        page.keyboard.press("Escape")  # ignored
        expect(page.locator("#candidate-actions")).to_be_hidden()
        regions = stored_as_drawn(page, seg, "ai")
        assert [r["type"] for r in regions] == ["line"], "an ignored suggestion is never saved"
        page.reload()  # ignored for this item in this tab
        page.wait_for_function("document.getElementById('canvas').viewer?.regions.length === 1")
        expect(page.locator("#candidate-actions")).to_be_hidden()
    with signed_in_page(app_server.url, seg["emails"]["ai"], PASSWORD) as page:  # another tab: offered again
        open_item(page, seg)
        expect(page.locator("#candidate-actions")).to_be_visible()
        page.wait_for_timeout(900)  # an Enter within 0.8 s of the suggestion appearing is not taken as accepting it
        page.keyboard.press("Enter")  # accepted: the lesion mask, which the brush then edits
        expect(page.locator("#regions li")).to_have_count(2)
        assert page.evaluate(MASK_AREA) == int(suggestion.sum())
        page.keyboard.press("e")
        drag(page, stage_point(page, 0.45, 0.3), stage_point(page, 0.45, 0.7), steps=6)
        assert page.evaluate(MASK_AREA) < int(suggestion.sum())
        regions = stored_as_drawn(page, seg, "ai")
        drawn, info = page_mask(page)
        masks = [r for r in regions if r["type"] == "mask"]
        assert len(masks) == 1 and masks[0]["label"] == "lesion"
        assert np.array_equal(decoded(masks[0]["rle"]), drawn)
        assert not np.array_equal(drawn, suggestion) and (drawn <= suggestion).all()


# -- click-to-segment -------------------------------------------------------------------------------------------------
def segment_route_exists(app_server) -> bool:
    """Whether the app has POST /items/{id}/segment: without it, Litestar's own 404 (PT404) answers."""
    with app_server.client() as c:
        r = c.post("/items/1/segment", json={"points": [[1, 1, 1]], "box": None})
    return not (r.status_code == 404 and '"PT404"' in r.text)


def test_click_to_segment_says_clearly_when_the_service_is_off(app_server, seg, database_url):
    if not segment_route_exists(app_server):
        pytest.skip("POST /items/{id}/segment has not landed in the app yet")
    server = start_app(database_url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                                      "DL_METRICS_REFRESH_SECONDS": "0", "DL_AI_SEGMENT": "off"})
    try:
        with signed_in_page(server.url, seg["emails"]["off"], PASSWORD) as page:
            open_item(page, seg)
            page.keyboard.press("g")
            page.keyboard.down("Shift")  # a not-lesion click alone is not sent: the tool asks for the lesion first
            page.mouse.click(*stage_point(page, 0.05, 0.05))
            page.keyboard.up("Shift")
            expect(page.locator("#mask-message")).to_contain_text("Click the lesion first")
            with page.expect_response(lambda r: r.url.endswith("/segment")) as answer:
                page.mouse.click(*stage_point(page, 0.45, 0.5))
            assert answer.value.status == 503
            expect(page.locator("#mask-message")).to_contain_text("off on this server")
            expect(page.locator("#candidate-actions")).to_be_hidden()
            page.keyboard.press("Escape")  # the prompts go
            assert page.evaluate("document.getElementById('canvas').viewer.prompts") is None
    finally:
        stop_app(server)


def test_click_to_segment_positive_and_negative_clicks_accept_save(app_server, seg, database_url):
    if not segment_route_exists(app_server):
        pytest.skip("POST /items/{id}/segment has not landed in the app yet")
    ref_url, ref = start_reference()
    server = start_app(database_url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                                      "DL_METRICS_REFRESH_SECONDS": "0", "DL_AI_SEGMENT": "http",
                                      "DL_AI_SEGMENT_URL": ref_url})
    try:
        with signed_in_page(server.url, seg["emails"]["clicks"], PASSWORD) as page:
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            open_item(page, seg)
            page.keyboard.press("g")
            requests: list[dict] = []
            page.on("request", lambda r: requests.append(r.post_data_json) if r.url.endswith("/segment") else None)
            with page.expect_response(lambda r: r.url.endswith("/segment"), timeout=60000) as answer:
                page.mouse.click(*stage_point(page, 0.45, 0.5))  # on the lesion
            assert answer.value.status == 200, answer.value.text()
            expect(page.locator("#candidate-actions")).to_be_visible()
            first = page.evaluate("document.getElementById('canvas').viewer.candidate.mask.area")
            assert first > 0
            page.keyboard.down("Shift")  # not lesion: the skin at the corner
            with page.expect_response(lambda r: r.url.endswith("/segment"), timeout=60000) as answer:
                page.mouse.click(*stage_point(page, 0.05, 0.05))
            page.keyboard.up("Shift")
            assert answer.value.status == 200, answer.value.text()
            expect(page.locator("#mask-message")).to_contain_text("Enter accepts")
            assert len(requests) == 2
            assert [p[2] for p in requests[1]["points"]] == [1, 0], requests[1]
            assert page.evaluate("document.getElementById('canvas').viewer.candidate.mask.area") > 0
            page.keyboard.press("Enter")
            expect(page.locator("#regions li")).to_have_count(1)
            regions = stored_as_drawn(page, seg, "clicks")
            drawn, info = page_mask(page)
            assert info["label"] == "lesion"
            masks = [r for r in regions if r["type"] == "mask"]
            assert len(masks) == 1 and np.array_equal(decoded(masks[0]["rle"]), drawn)
            assert not errors, errors
    finally:
        stop_app(server)
        stop(ref)


# -- the reviewer -----------------------------------------------------------------------------------------------------
def test_the_reviewer_sees_the_mask_and_the_dice_between_revisions(app_server, seg, tmp_path):
    item, status, regions = item_of(seg, "brush")
    if status != "review":
        pytest.skip("needs the brush test's submitted revision")
    stored = decoded([r for r in regions if r["type"] == "mask"][0]["rle"]).astype(bool)
    inner = stored.copy()  # a pixel well inside the mask: set with its 7x7 neighbourhood
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            inner &= np.roll(np.roll(stored, dy, 0), dx, 1)
    ys, xs = np.nonzero(inner)
    cy, cx = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])

    def pixel(page, opacity: int) -> tuple[int, int, int]:
        page.locator("#mask-opacity").fill(str(opacity))
        page.wait_for_timeout(100)
        x, y = page.evaluate("""([x, y]) => { const c = document.getElementById('canvas'), v = c.viewer,
            r = c.getBoundingClientRect(); return [r.left + v.tx + (x + 0.5) * v.scale, r.top + v.ty + (y + 0.5) * v.scale]; }""",
                             [int(cx), int(cy)])
        png = page.screenshot(clip={"x": x - 1, "y": y - 1, "width": 3, "height": 3})
        return Image.open(io.BytesIO(png)).convert("RGB").getpixel((1, 1))

    with signed_in_page(app_server.url, seg["emails"]["rev"], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"/review?project={seg['project']}")
        expect(page.locator("#start-btn")).to_be_enabled()
        page.keyboard.press("Enter")
        expect(page.locator("#annotation")).to_contain_text("mask lesion")
        expect(page.locator("#mask-bar")).to_be_visible()
        page.wait_for_function("document.getElementById('canvas').viewer.regions.some((r) => r.type === 'mask')")
        without, shown = pixel(page, 0), pixel(page, 100)
        assert sum(abs(a - b) for a, b in zip(without, shown)) > 60, (without, shown)  # the mask is drawn there
        outside = page.evaluate("""() => { const v = document.getElementById('canvas').viewer;
            return v.regions.find((r) => r.type === 'mask').mask.at(5, 5); }""")
        assert outside is False
        page.fill("#comment", "Include the red area in the lesion mask.")
        page.click("#changes-btn")
        expect(page.locator("#start-message")).to_contain_text("Nothing to review")

    with signed_in_page(app_server.url, seg["emails"]["brush"], PASSWORD) as page:  # the annotator widens the mask
        open_item(page, seg)
        expect(page.locator("#review-comment")).to_contain_text("red area")
        page.keyboard.press("k")
        drag(page, stage_point(page, 0.4, 0.65), stage_point(page, 0.55, 0.7))
        page.keyboard.press("Control+Enter")
        expect(page.locator("#start-message")).to_contain_text("Nothing to annotate")
    assert item_of(seg, "brush")[1] == "review"

    with signed_in_page(app_server.url, seg["emails"]["rev"], PASSWORD) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"/review?project={seg['project']}")
        page.click("#start-btn")
        expect(page.locator("#history")).to_contain_text("mask lesion: Dice 0.")  # below 1: the mask changed
        expect(page.locator("#prev-toggle")).to_be_visible()  # revision 1's mask, dashed over the image
        assert page.evaluate("document.getElementById('canvas').viewer.overlays.some((o) => o.type === 'outline')")
        screenshot(page, tmp_path, "reviewer-mask-diff")


# -- admin: region labels ---------------------------------------------------------------------------------------------
def test_the_admin_edits_region_labels_with_the_keyboard(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "labels")
    with signed_in_page(app_server.url, team["emails"]["admin"], PASSWORD) as page:
        page.goto(f"/admin?project={team['project']}#region-labels")
        expect(page.locator("#label-list li")).to_have_count(8)
        page.locator("#label-new").focus()
        page.keyboard.type("scar")
        page.keyboard.press("Enter")  # added at the end
        expect(page.locator("#label-list li")).to_have_count(9)
        page.locator('#label-list button[aria-label="Move scar up"]').focus()
        page.keyboard.press("Enter")  # moved up one; the focus stays on its button
        page.keyboard.press("Enter")
        page.locator('#label-list button[aria-label="Remove vessels"]').focus()
        page.keyboard.press("Enter")
        page.locator("#labels-save").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#labels-state")).to_contain_text("Saved")
    with psycopg.connect(database_url) as conn:
        labels, = conn.execute("SELECT region_labels FROM core.project WHERE id = %s", (team["project"],)).fetchone()
    assert labels == ["lesion", "pigment network", "dots/globules", "streaks", "blue-white veil",
                      "regression structures", "scar", "milia-like cysts"]
