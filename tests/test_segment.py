"""Click-to-segment (docs/segmentation.md) end to end: the reference service's interactive segmentation on synthetic
lesions of known geometry; the app's POST /items/{id}/segment against the reference service and against loopback
services that hang, refuse or answer garbage; the pipeline's segment stage and the crop's lesion mask. A database of
its own, real app processes, real services."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from PIL import Image, ImageDraw, ImageFilter
from psycopg.types.json import Jsonb
from pycocotools import mask as coco_mask

from ai_services import Loopback, start_reference, start_worker, stop
from app.images import metadata_scan
from conftest import JWT_SECRET, run_cli, start_app, stop_app, url_for
from sqlcall import call, join, make_user, new_project
from test_ai_worker import add_image, jobs, wait_for
from test_http_rpc import token

W, H = 1024, 768


# -- synthetic lesions of known geometry --------------------------------------------------------------------------

def synthetic(seed: int, cx: float = W / 2, cy: float = H / 2, rx: float = 120, ry: float = 90, wobble: float = 0.0,
              colour=(140, 92, 62), neighbour: tuple[float, float, float] | None = None,
              elsewhere: tuple[float, float, float] | None = None, size=(W, H)):
    """A brownish lesion (an ellipse, or an irregular blob when wobble > 0) on noisy, unevenly lit skin, with a soft
    edge and pigment texture; optionally a second dark blob (x, y, radius) of the same colour next to it, or a much
    darker lesion (x, y, radius) elsewhere in the image. Returns PNG bytes, the drawn lesion (bool h × w), the
    neighbour's own pixels (or None)."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    skin = np.empty((h, w, 3), np.float32)
    skin[:] = (226, 192, 168)
    skin *= (1 - 0.08 * xx / w - 0.05 * yy / h)[..., None]
    skin += rng.normal(0, 9, (h, w, 1)) + rng.normal(0, 4, (h, w, 3))
    if elsewhere:
        ex, ey, er = elsewhere
        skin[(xx - ex) ** 2 + (yy - ey) ** 2 <= er ** 2] = (70, 45, 35)
    k, phase = int(rng.integers(3, 8)), rng.uniform(0, 2 * math.pi, 3)
    outline = []
    for i in range(360):
        t = 2 * math.pi * i / 360
        f = 1 + wobble * (0.6 * math.sin(k * t + phase[0]) + 0.3 * math.sin((k + 3) * t + phase[1])
                          + 0.2 * math.sin(2 * t + phase[2]))
        outline.append((cx + rx * f * math.cos(t), cy + ry * f * math.sin(t)))
    drawn = Image.new("L", (w, h), 0)
    ImageDraw.Draw(drawn).polygon(outline, fill=255)
    extra = Image.new("L", (w, h), 0)
    if neighbour:
        nx, ny, nr = neighbour
        ImageDraw.Draw(extra).ellipse((nx - nr, ny - nr, nx + nr, ny + nr), fill=255)
    truth, blob = np.asarray(drawn) > 127, np.asarray(extra) > 127
    alpha = np.asarray(Image.fromarray(((truth | blob) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2.5)),
                       np.float32)[..., None] / 255
    pigment = np.empty((h, w, 3), np.float32)
    pigment[:] = colour
    pigment += rng.normal(0, 10, (h, w, 1))
    out = io.BytesIO()
    Image.fromarray(np.clip(skin * (1 - alpha) + pigment * alpha, 0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue(), truth, (blob & ~truth) if neighbour else None


LESIONS = {  # name: synthetic() arguments; the click goes to (cx, cy)
    "ellipse centred": dict(seed=1),
    "small ellipse top left": dict(seed=2, cx=300, cy=250, rx=60, ry=45),
    "large irregular": dict(seed=3, rx=200, ry=150, wobble=0.15),
    "irregular bottom right": dict(seed=4, cx=700, cy=500, rx=90, ry=90, wobble=0.25, colour=(120, 80, 60)),
    "tiny near the corner": dict(seed=5, cx=850, cy=150, rx=35, ry=28, colour=(150, 105, 75)),
    "dark elongated": dict(seed=6, cx=400, cy=420, rx=150, ry=80, wobble=0.2, colour=(100, 70, 55)),
    "filling most of the frame": dict(seed=25, rx=470, ry=350, wobble=0.05),
    "light beside a darker one": dict(seed=31, cx=750, cy=384, rx=110, ry=90, colour=(190, 150, 125),
                                      elsewhere=(260, 380, 160)),
}
NEIGHBOURS = {  # a second dark blob overlapping the lesion's edge: one connected dark region
    "blob to the right": dict(seed=7, cx=450, cy=384, rx=100, ry=80, neighbour=(585, 384, 45)),
    "blob above right": dict(seed=8, cx=450, cy=384, rx=100, ry=80, neighbour=(575, 330, 40)),
    "blob by an irregular lesion": dict(seed=9, cx=500, cy=400, rx=90, ry=90, wobble=0.15, neighbour=(605, 330, 40)),
}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def decoded(rle: dict) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


# -- the reference service ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference():
    url, proc = start_reference()
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client
    stop(proc)


def prepare(client: httpx.Client, png: bytes) -> str:
    r = client.post("/v1/segment/prepare", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"], body["width"], body["height"]) == ("reference-grabcut", "1.0", W, H)
    return body["embedding"]


def click(client: httpx.Client, source: dict, points: list, box=None) -> dict:
    r = client.post("/v1/segment", json={**source, "points": points, "box": box, "size": [H, W]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rle"]["size"] == [H, W] and 0 <= body["score"] <= 1 and body["model"] == "reference-grabcut"
    return body


@pytest.mark.parametrize("name", LESIONS)
def test_one_click_segments_a_synthetic_lesion(reference, name):
    args = LESIONS[name]
    png, truth, _ = synthetic(**args)
    x, y = args.get("cx", W / 2), args.get("cy", H / 2)
    assert truth[int(y), int(x)], "the click is on the lesion"
    got = decoded(click(reference, {"embedding": prepare(reference, png)}, [[x, y, 1]])["rle"])
    assert dice(got, truth) >= 0.9, f"{name}: Dice {dice(got, truth):.3f}"


@pytest.mark.parametrize("name", NEIGHBOURS)
def test_a_negative_click_removes_a_neighbouring_blob(reference, name):
    args = NEIGHBOURS[name]
    png, truth, blob = synthetic(**args)
    source = {"embedding": prepare(reference, png)}
    lesion, (nx, ny, _) = [args["cx"], args["cy"], 1], args["neighbour"]
    alone = decoded(click(reference, source, [lesion])["rle"])
    assert (alone & blob).sum() > 0.5 * blob.sum(), "one click takes the whole dark region, blob and all"
    both = decoded(click(reference, source, [lesion, [nx, ny, 0]])["rle"])
    assert (both & blob).sum() < 0.1 * blob.sum(), "the not-lesion click removes the blob"
    assert dice(both, truth) >= 0.9, f"{name}: Dice {dice(both, truth):.3f}"


def test_a_box_alone_or_with_clicks(reference):
    png, truth, _ = synthetic(**LESIONS["large irregular"])
    ys, xs = np.nonzero(truth)
    box = [int(xs.min()) - 15, int(ys.min()) - 15, int(xs.max() - xs.min()) + 30, int(ys.max() - ys.min()) + 30]
    source = {"image_base64": base64.b64encode(png).decode(), "media_type": "image/png"}
    assert dice(decoded(click(reference, source, [], box)["rle"]), truth) >= 0.9
    assert dice(decoded(click(reference, source, [[W / 2, H / 2, 1]], box)["rle"]), truth) >= 0.9
    # a box around part of the image only: nothing of the mask lies outside it
    half = decoded(click(reference, source, [], [0, 0, W // 2, H])["rle"])
    assert half.any() and not half[:, W // 2:].any()


def test_the_embedding_and_the_image_give_the_same_mask(reference):
    for args, points in ((LESIONS["irregular bottom right"], [[700, 500, 1]]),
                         (NEIGHBOURS["blob to the right"], [[450, 384, 1], [585, 384, 0]])):
        png, _, _ = synthetic(**args)
        by_embedding = click(reference, {"embedding": prepare(reference, png)}, points)
        by_bytes = click(reference, {"image_base64": base64.b64encode(png).decode(), "media_type": "image/png"},
                         points)
        assert by_embedding["rle"] == by_bytes["rle"] and by_embedding["score"] == by_bytes["score"]


def test_the_embedding_is_rebuilt_from_pixels(reference):
    """What the pipeline stores of an image for click-to-segment carries none of the source's metadata."""
    png, _, _ = synthetic(**LESIONS["ellipse centred"])
    exif = Image.Exif()
    exif[0x010E] = "PLANTED-DESCRIPTION"
    source = io.BytesIO()
    Image.open(io.BytesIO(png)).save(source, "JPEG", exif=exif.tobytes(), comment=b"PLANTED-COMMENT")
    assert b"PLANTED-COMMENT" in source.getvalue()
    embedding = prepare(reference, source.getvalue())
    jpeg = base64.b64decode(embedding.split(".")[2])
    assert metadata_scan.scan(jpeg) == [] and b"PLANTED" not in jpeg and "PLANTED" not in embedding


def test_the_crop_answers_the_lesion_mask_at_full_size(reference):
    png, truth, _ = synthetic(**LESIONS["ellipse centred"])
    r = reference.post("/v1/crop", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    mask = r.json()["mask"]
    assert mask["size"] == [H, W]
    assert dice(decoded(mask), truth) >= 0.9
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), (228, 196, 172)).save(blank, "PNG")
    r = reference.post("/v1/crop", content=blank.getvalue())
    assert r.status_code == 200 and "mask" not in r.json(), "no lesion: no mask (an empty one is no suggestion)"


def test_bad_requests_are_refused_with_the_field_named(reference):
    png, _, _ = synthetic(**LESIONS["ellipse centred"])
    embedding = prepare(reference, png)
    ok = {"embedding": embedding, "points": [[512, 384, 1]]}
    cases = [
        (b"not json", 400, "PT400", "JSON object"),
        (b"[1, 2]", 400, "PT400", "JSON object"),
        (b'{"points": [[1e999, 1, 1]]}', 400, "PT400", "JSON object"),
        ({**ok, "points": [[10 ** 40, 1, 1]]}, 400, "22023", "points[0]:"),
        ({"points": [[1, 1, 1]]}, 400, "22023", "embedding or image_base64"),
        ({**ok, "image_base64": "AAAA"}, 400, "22023", "embedding or image_base64"),
        ({**ok, "embedding": "dlseg1.bm9wZQ.AAAA"}, 400, "22023", "embedding:"),
        ({**ok, "embedding": embedding[:-40]}, 400, "22023", "embedding:"),
        ({**ok, "embedding": 7}, 400, "22023", "embedding:"),
        ({"image_base64": "%%%", "points": [[1, 1, 1]]}, 400, "22023", "image_base64:"),
        ({"image_base64": base64.b64encode(b"%PDF-1.4").decode(), "points": [[1, 1, 1]]}, 415, "PT415", "image"),
        ({**ok, "points": [[2000, 10, 1]]}, 400, "22023", "points[0]: must lie inside the 1024x768 image"),
        ({**ok, "points": [[10, 10, 1], [10, 10, 2]]}, 400, "22023", "points[1]:"),
        ({**ok, "points": [[10, 10, 0]]}, 400, "22023", "points: click the lesion"),
        ({**ok, "points": [[10, 10, 1]] * 51}, 400, "22023", "points: a list of at most 50"),
        ({**ok, "box": [1000, 0, 100, 10]}, 400, "22023", "box:"),
        ({**ok, "box": [0, 0, 10]}, 400, "22023", "box:"),
        ({**ok, "size": [W, H]}, 400, "22023", "size: the image is [768, 1024]"),
        ({**ok, "colour": "red"}, 400, "22023", "colour: not a field"),
    ]
    for body, status, code, words in cases:
        r = reference.post("/v1/segment", content=body if isinstance(body, bytes) else json.dumps(body),
                           headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (status, code), (body if isinstance(body, bytes) else
                                                                     list(body), r.text)
        assert words in r.json()["message"], r.text
    r = reference.post("/v1/segment/prepare", content=b"")
    assert r.status_code == 400 and r.json()["code"] == "PT400"
    r = reference.post("/v1/segment/prepare", content=b"%PDF-1.4 not an image")
    assert r.status_code == 415 and r.json()["code"] == "PT415"


# -- the app's click route ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory, reference):
    name = f"seg_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = url_for(name)
    out = run_cli("migrate", env={"DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    data_dir = tmp_path_factory.mktemp("seg-data")
    with psycopg.connect(url) as conn:
        admin = make_user(conn, "admin@seg.test", ["admin"])
        ann = make_user(conn, "ann@seg.test", ["annotator"])
        ann2 = make_user(conn, "ann2@seg.test", ["annotator"])
        project = new_project(conn, admin, "seg")
        join(conn, admin, project, ann)
        join(conn, admin, project, ann2)
        call(conn, admin, "admin", "create_work_rule", project_id=project, name="all", max_items=1000)
    common = {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_METRICS_REFRESH_SECONDS": "0",
              "DL_DATA_DIR": str(data_dir)}
    behaviour = [lambda n, body: (500, {"message": "not set"})]
    loop = Loopback(lambda n, body: behaviour[0](n, body))
    real = start_app(url, {**common, "DL_RATE_RPC": "off", "DL_AI_SEGMENT_URL": str(reference.base_url)})
    fake = start_app(url, {**common, "DL_RATE_RPC": "30/600", "DL_AI_SEGMENT_URL": loop.url,
                           "DL_AI_SEGMENT_TIMEOUT": "1"})
    w = {"url": url, "data_dir": data_dir, "admin": admin, "ann": ann, "ann2": ann2, "project": project,
         "real": real, "fake": fake, "loop": loop, "behaviour": behaviour, "common": common}
    with real.client() as c:
        w["tokens"] = {who: token(c, url, w[who]) for who in ("admin", "ann", "ann2")}
    yield w
    stop_app(real)
    stop_app(fake)
    loop.close()
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_item(world, png: bytes) -> int:
    """An image of the project and its work item (no worker runs here: nothing is prepared)."""
    with psycopg.connect(world["url"], autocommit=True) as db:
        image = add_image(world, db, png)
        return db.execute("SELECT id FROM core.work_item WHERE image_id = %s", (image,)).fetchone()[0]


def post(app, world, item: int, body, who: str = "admin") -> httpx.Response:
    with app.client() as c:
        return c.post(f"/items/{item}/segment", headers=world["tokens"][who], timeout=30,
                      **({"content": body} if isinstance(body, bytes) else {"json": body}))


def valid_answer(n, body):
    m = np.zeros((H, W), np.uint8)
    m[100:200, 300:400] = 1
    enc = coco_mask.encode(np.asfortranarray(m))
    return 200, {"model": "fake-sam", "version": "3", "rle": {"size": [H, W], "counts": enc["counts"].decode()},
                 "score": 0.75}


def test_a_click_through_the_app_answers_a_mask_of_the_image_size(world):
    png, truth, _ = synthetic(**LESIONS["irregular bottom right"])
    item = new_item(world, png)
    r = post(world["real"], world, item, {"points": [[700, 500, 1]]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"rle", "score", "model", "version", "latency_ms"}
    assert body["rle"]["size"] == [H, W] and body["model"] == "reference-grabcut"
    assert isinstance(body["latency_ms"], int) and 0 <= body["score"] <= 1
    assert dice(decoded(body["rle"]), truth) >= 0.9


def test_who_may_click_and_what_they_may_send(world):
    png, _, _ = synthetic(**LESIONS["small ellipse top left"])
    item = new_item(world, png)
    with world["real"].client() as c:  # ann takes the item; ann2 may not open it
        held = c.post("/rpc/next_item", json={"project_id": world["project"]}, headers=world["tokens"]["ann"])
        assert held.status_code == 200, held.text
        mine = held.json()["item"]["id"]
    prompt = {"points": [[300, 250, 1]]}
    assert post(world["real"], world, mine, prompt, "ann").status_code == 200
    theirs, missing = post(world["real"], world, mine, prompt, "ann2"), post(world["real"], world, 987654321, prompt)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["code"] == missing.json()["code"] == "P0002"
    assert theirs.json()["message"] == f"work item {mine} not found"
    assert post(world["real"], world, mine, {"points": "x"}, "ann2").status_code == 404, "the prompt is not looked at"
    with world["real"].client() as c:
        r = c.post(f"/items/{item}/segment", json=prompt)
        assert r.status_code == 401 and r.json()["code"]
    bad = post(world["real"], world, item, {"points": [[2000, 5, 1]]})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "points[0]"
    bad = post(world["real"], world, item, {"points": [[5, 5, 0]], "box": [0, 0, 0, 5]})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "box"
    bad = post(world["real"], world, item, {"points": [[10 ** 40, 5, 1]]})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "points[0]"
    bad = post(world["real"], world, item, {"points": [[1, 1, 1]], "colour": "red"})
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "colour"
    for body in (b"not json", b"[1, 2]", b"", b'{"points": [[1e999, 1, 1]]}'):
        bad = post(world["real"], world, item, body)
        assert bad.status_code == 400 and bad.json()["code"] in ("PGRST102",), bad.text


def test_failures_of_the_service_are_gateway_errors(world):
    item = new_item(world, synthetic(**LESIONS["ellipse centred"])[0])
    loop, fake = world["loop"], world["fake"]

    def hang(n, body):
        time.sleep(2.5)
        return valid_answer(n, body)

    def rle(counts, size=(H, W)):
        return lambda n, body: (200, {"rle": {"size": list(size), "counts": counts}, "score": 0.5})

    good = valid_answer(0, b"")[1]["rle"]["counts"]
    cases = [
        (hang, 504, "did not answer within 1 s"),
        (lambda n, body: (500, {"message": "out of memory"}), 502, "HTTP 500"),
        (lambda n, body: (422, {"message": "no"}), 502, "HTTP 422"),
        (lambda n, body: (200, "a sentence, not an object"), 502, "not a JSON object"),
        (lambda n, body: (200, {"score": 0.5}), 502, "rle:"),
        (rle(good, (W, H)), 502, "rle: size is [1024, 768]"),
        (rle("PX]h0", (H, W)), 502, "rle: runs do not add up"),
        (rle("o"), 502, "rle: counts end in the middle"),
        (rle("a b"), 502, "rle: counts: character"),
        (lambda n, body: (200, {**valid_answer(n, body)[1], "score": "high"}), 502, "score:"),
        (lambda n, body: (200, {**valid_answer(n, body)[1], "score": 1.5}), 502, "score:"),
        (lambda n, body: (200, {**valid_answer(n, body)[1], "score": float("inf")}), 502, "not JSON"),
    ]
    for answer, status, words in cases:
        world["behaviour"][0] = answer
        r = post(fake, world, item, {"points": [[512, 384, 1]]})
        assert r.status_code == status, (words, r.text)
        err = r.json()
        assert err["code"] == f"PT{status}" and words in err["message"], err
    world["behaviour"][0] = valid_answer
    r = post(fake, world, item, {"points": [[512, 384, 1]], "box": [10, 10, 100, 100]})
    assert r.status_code == 200 and r.json()["model"] == "fake-sam" and r.json()["score"] == 0.75
    sent = json.loads(loop.requests[-1]["body"])
    assert loop.requests[-1]["path"] == "/v1/segment"
    assert sent["points"] == [[512, 384, 1]] and sent["box"] == [10, 10, 100, 100] and sent["size"] == [H, W]
    assert sent["media_type"] == "image/png" and "embedding" not in sent
    stored = Path(world["data_dir"]) / "images" / "images" / str(world["project"])
    assert base64.b64decode(sent["image_base64"]) in {p.read_bytes() for p in stored.iterdir()}


def test_a_prepared_embedding_is_sent_instead_of_the_image(world, reference):
    png, _, _ = synthetic(**LESIONS["tiny near the corner"])
    item = new_item(world, png)
    embedding = prepare(reference, png)
    key = f"derived/{world['project']}/{hashlib.sha256(png).hexdigest()}/seg-test.txt"
    path = Path(world["data_dir"]) / "images" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(embedding)
    with psycopg.connect(world["url"], autocommit=True) as db:
        db.execute("INSERT INTO core.ai_suggestion (image_id, stage, model_name, model_version, payload, latency_ms) "
                   "SELECT image_id, 'segment', 'reference-grabcut', '1.0', %s, 1 FROM core.work_item WHERE id = %s",
                   (Jsonb({"embedding": {"storage_key": key, "bytes": len(embedding)}}), item))
    loop = world["loop"]
    world["behaviour"][0] = valid_answer
    before = len(loop.requests)
    assert post(world["fake"], world, item, {"points": [[850, 150, 1]]}).status_code == 200
    sent = json.loads(loop.requests[-1]["body"])
    assert len(loop.requests) == before + 1
    assert sent["embedding"] == embedding and "image_base64" not in sent
    # a service that no longer takes that embedding (another model since): the image, once
    world["behaviour"][0] = lambda n, body: (400, {"message": "stale"}) if b'"embedding"' in body \
        else valid_answer(n, body)
    before = len(loop.requests)
    assert post(world["fake"], world, item, {"points": [[850, 150, 1]]}).status_code == 200
    assert len(loop.requests) == before + 2 and "image_base64" in json.loads(loop.requests[-1]["body"])
    # and the real service gives the same mask either way
    real = post(world["real"], world, item, {"points": [[850, 150, 1]]})
    path.unlink()  # gone from storage: the image is sent
    assert real.json()["rle"] == post(world["real"], world, item, {"points": [[850, 150, 1]]}).json()["rle"]


def test_each_click_counts_against_the_request_budget(world):
    item = new_item(world, synthetic(**LESIONS["ellipse centred"])[0])
    world["behaviour"][0] = valid_answer
    statuses = [post(world["fake"], world, item, {"points": [[512, 384, 1]]}, "ann2").status_code
                for _ in range(31)]
    assert statuses[:30] == [404] * 30, "refused clicks count too"
    assert statuses[30] == 429


def test_off_answers_503(world):
    app = start_app(world["url"], {**world["common"], "DL_RATE_RPC": "off", "DL_AI_SEGMENT": "off"})
    try:
        item = new_item(world, synthetic(**LESIONS["ellipse centred"])[0])
        r = post(app, world, item, {"points": [[512, 384, 1]]})
        assert r.status_code == 503 and r.json()["code"] == "PT503" and "off" in r.json()["message"]
    finally:
        stop_app(app)


# -- the pipeline -------------------------------------------------------------------------------------------------

def close_open_jobs(world) -> None:
    """Only the image a test adds is worked on by its worker."""
    with psycopg.connect(world["url"], autocommit=True) as db:
        db.execute("UPDATE core.ai_job SET status = 'failed', lease_expires_at = NULL, finished_at = now() "
                   "WHERE status IN ('queued', 'running')")


def test_the_pipeline_prepares_each_image_and_keeps_the_crop_mask(world, reference):
    close_open_jobs(world)
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_REFERENCE_URL": str(reference.base_url), "DL_AI_CLASSIFY": "off",
                           "DL_AI_RECOMMEND": "off"})
    png, truth, _ = synthetic(**LESIONS["dark elongated"])
    try:
        with psycopg.connect(world["url"], autocommit=True) as db:
            image = add_image(world, db, png)
            j = wait_for(lambda: (lambda j: j if all(j.get(s, ("",))[0] in ("done", "failed", "skipped")
                                                     for s in ("crop", "segment")) else None)(jobs(db, image)),
                         60, "crop and segment")
            assert (j["crop"][0], j["segment"][0]) == ("done", "done"), j
            crop, = db.execute("SELECT payload FROM core.ai_suggestion WHERE image_id = %s AND stage = 'crop'",
                               (image,)).fetchone()
            seg = db.execute("SELECT model_name, payload FROM core.ai_suggestion WHERE image_id = %s "
                             "AND stage = 'segment'", (image,)).fetchone()
            item = db.execute("SELECT id FROM core.work_item WHERE image_id = %s", (image,)).fetchone()[0]
    finally:
        assert "Traceback" not in stop(worker)
    assert crop["mask"]["size"] == [H, W] and dice(decoded(crop["mask"]), truth) >= 0.9
    assert seg[0] == "reference-grabcut"
    key = seg[1]["embedding"]["storage_key"]
    assert key.startswith(f"derived/{world['project']}/{hashlib.sha256(png).hexdigest()}/seg-")
    stored = (Path(world["data_dir"]) / "images" / key).read_bytes()
    assert len(stored) == seg[1]["embedding"]["bytes"] and stored.startswith(b"dlseg1.")
    with world["real"].client() as c:
        doc = c.post("/rpc/item_detail", json={"item_id": item}, headers=world["tokens"]["admin"]).json()
    assert doc["ai"]["segment"]["payload"] == {"prepared": True}, "the workspace learns it is prepared, no more"
    assert key not in json.dumps(doc)
    assert doc["ai"]["crop"]["payload"]["mask"] == crop["mask"], "the lesion mask, a suggested mask"
    r = post(world["real"], world, item, {"points": [[400, 420, 1]]})
    assert r.status_code == 200 and dice(decoded(r.json()["rle"]), truth) >= 0.9


def test_a_service_without_preparation_is_skipped(world):
    close_open_jobs(world)
    no_prepare = Loopback(lambda n, body: (404, {"message": "no such route"}))
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_CROP": "off", "DL_AI_CLASSIFY": "off", "DL_AI_RECOMMEND": "off",
                           "DL_AI_SEGMENT_URL": no_prepare.url})
    try:
        with psycopg.connect(world["url"], autocommit=True) as db:
            # an image of its own (the same bytes again would be the same image, whose jobs ran long ago)
            image = add_image(world, db, synthetic(seed=12, cx=600, cy=300)[0])
            j = wait_for(lambda: (lambda j: j if j.get("segment", ("",))[0] in ("done", "failed", "skipped")
                                  else None)(jobs(db, image)), 30, "the segment job")
            assert j["segment"][:2] == ("skipped", 1), j
            assert "404" in j["segment"][2]
            assert db.execute("SELECT count(*) FROM core.ai_suggestion WHERE image_id = %s AND stage = 'segment'",
                              (image,)).fetchone()[0] == 0
        assert no_prepare.requests[-1]["path"] == "/v1/segment/prepare"
    finally:
        stop(worker)
        no_prepare.close()


def test_an_embedding_of_an_image_erased_meanwhile_is_not_kept(world):
    """The image is erased while its embedding is being made: the worker's file is deleted, not left behind."""
    close_open_jobs(world)

    def slow(n, body):
        time.sleep(2)
        return 200, {"model": "slow", "version": "1", "embedding": "E" * 64}
    service = Loopback(slow)
    worker = start_worker(world["url"], str(world["data_dir"]),
                          {"DL_AI_CROP": "off", "DL_AI_CLASSIFY": "off", "DL_AI_RECOMMEND": "off",
                           "DL_AI_SEGMENT_URL": service.url})
    png = synthetic(seed=13, cx=400, cy=300)[0]
    folder = Path(world["data_dir"]) / "images" / "derived" / str(world["project"]) / hashlib.sha256(png).hexdigest()
    try:
        with psycopg.connect(world["url"], autocommit=True) as db:
            image = add_image(world, db, png)
            wait_for(lambda: jobs(db, image).get("segment", ("",))[0] == "running", 30, "the segment call")
            call(db, world["admin"], "admin", "erase_image", image_id=image)
        wait_for(lambda: len(service.requests) == 1, 10, "the request")
        time.sleep(3)  # the answer came and the worker tried to record it
        assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())
    finally:
        log = stop(worker)
        service.close()
    assert "could not record" in log, "the worker did reach the recording step"
