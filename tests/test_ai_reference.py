"""The reference AI service over HTTP: segmentation and ABCD features on synthetic lesions of known geometry,
the crop, the quality check, and refusals of what is not an image."""
from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from ai_services import blurred, irregular_lesion, round_lesion, start_reference, stop


@pytest.fixture(scope="module")
def reference():
    url, proc = start_reference()
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client
    stop(proc)


def _classify(client: httpx.Client, png: bytes, **params) -> dict:
    r = client.post("/v1/classify", content=png, headers={"content-type": "image/png"}, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_round_lesion_scores_lower_than_irregular_multicoloured_one(reference):
    round_png, _ = round_lesion()
    irregular_png, _ = irregular_lesion()
    calm, wild = _classify(reference, round_png), _classify(reference, irregular_png)
    fc, fw = calm["features"], wild["features"]
    assert fc["asymmetry"]["score"] == 0 and fw["asymmetry"]["score"] >= 1
    assert fc["border"]["score"] < fw["border"]["score"]
    assert fc["colours"]["score"] == 1 and fw["colours"]["score"] >= 3
    assert {"black", "blue_grey"} <= set(fw["colours"]["present"])
    assert fc["tds"] < 4.75 < 5.45 < fw["tds"]
    assert (fc["tds_band"], fw["tds_band"]) == ("benign", "malignant")
    assert calm["probabilities"]["NV"] > 0.5 and wild["probabilities"]["MEL"] > 0.5
    for doc in (calm, wild):
        assert sum(doc["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert doc["model"] == "reference-abcd" and "not a diagnostic device" in doc["disclaimer"]


def test_tds_follows_the_published_weights(reference):
    f = _classify(reference, irregular_lesion()[0])["features"]
    expected = 1.3 * f["asymmetry"]["score"] + 0.1 * f["border"]["score"] + 0.5 * f["colours"]["score"] \
        + 0.5 * f["diameter"]["score"]
    assert f["tds"] == pytest.approx(expected, abs=0.01)


def test_diameter_uses_the_recorded_scale(reference):
    png, (x0, _, x1, _) = round_lesion(radius=90)  # 180 px across
    d = _classify(reference, png, pixels_per_mm=20)["features"]["diameter"]
    assert d["assumed_scale"] is False
    assert d["mm"] == pytest.approx(9.0, abs=0.8)  # 180 px at 20 px/mm
    assert d["score"] == 4  # 9-12 mm
    assert _classify(reference, png)["features"]["diameter"]["assumed_scale"] is True


def test_crop_contains_the_lesion_and_is_standardised(reference):
    for png, (x0, y0, x1, y1) in (round_lesion(), irregular_lesion()):
        r = reference.post("/v1/crop", content=png, headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        body = r.json()
        b = body["box"]
        assert b["x"] <= x0 and b["y"] <= y0 and b["x"] + b["width"] >= x1 and b["y"] + b["height"] >= y1
        assert b["width"] < 600 or b["height"] < 600, "the crop is tighter than the whole image"
        std = Image.open(io.BytesIO(base64.b64decode(body["standardised"]["png_base64"])))
        assert std.size == (512, 512) and std.format == "PNG"


def test_quality_check_flags_a_blurred_image(reference):
    png, _ = round_lesion()
    sharp, soft = _classify(reference, png)["quality"], _classify(reference, blurred(png))["quality"]
    assert sharp["ok"] and sharp["flag_suggestion"] is None
    assert "blurry" in soft["reasons"] and soft["flag_suggestion"] == "bad_quality"
    assert soft["laplacian_variance"] < sharp["laplacian_variance"]


def test_what_is_not_an_image_is_refused_clearly(reference):
    r = reference.post("/v1/classify", content=b"%PDF-1.4 not an image", headers={"content-type": "image/png"})
    assert r.status_code == 415 and r.json()["code"] == "PT415"
    r = reference.post("/v1/crop", content=b"")
    assert r.status_code == 400 and "image bytes" in r.json()["message"]
    r = reference.post("/v1/classify", content=round_lesion()[0], params={"pixels_per_mm": "-3"})
    assert r.status_code == 400 and r.json()["code"] == "22023"
    blank = io.BytesIO()
    Image.new("RGB", (300, 300), (228, 196, 172)).save(blank, "PNG")
    r = reference.post("/v1/classify", content=blank.getvalue())
    assert r.status_code == 422 and "no lesion" in r.json()["message"]
