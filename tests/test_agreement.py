"""Agreement in SQL against independent computations: Krippendorff's alpha (core.krippendorff_alpha) equals the
`krippendorff` package on random data with missing values; mask overlap (core.mask_overlap) equals NumPy."""
from __future__ import annotations

import krippendorff
import numpy as np
import psycopg
import pytest

LEVELS = ("nominal", "ordinal", "interval")


def sql_alpha(db: psycopg.Connection, data: np.ndarray, metric: str) -> float | None:
    units, values = [], []
    for rater in data:
        for unit, v in enumerate(rater):
            if not np.isnan(v):
                units.append(unit)
                values.append(str(int(v)) if metric != "interval" else repr(float(v)))
    return db.execute("SELECT core.krippendorff_alpha(%s::bigint[], %s::text[], %s)",
                      (units, values, metric)).fetchone()[0]


def random_data(rng: np.random.Generator, raters: int, units: int, values: int, missing: float,
                agreement: float) -> np.ndarray:
    truth = rng.integers(1, values + 1, units)
    data = np.where(rng.random((raters, units)) < agreement, truth, rng.integers(1, values + 1, (raters, units)))
    data = data.astype(float)
    data[rng.random((raters, units)) < missing] = np.nan
    return data


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_the_krippendorff_package(database_url, seed, level):
    rng = np.random.default_rng(seed)
    data = random_data(rng, raters=int(rng.integers(2, 7)), units=int(rng.integers(5, 80)),
                       values=int(rng.integers(2, 8)), missing=float(rng.uniform(0, 0.4)),
                       agreement=float(rng.uniform(0.2, 0.9)))
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                  value_domain=sorted({v for v in data.ravel() if not np.isnan(v)}))
    with psycopg.connect(database_url) as db:
        got = sql_alpha(db, data, level)
    assert got == pytest.approx(expected, abs=1e-9)


def test_interval_alpha_on_decimals(database_url):
    rng = np.random.default_rng(42)
    truth = rng.uniform(2, 20, 40)
    data = truth + rng.normal(0, 1.5, (3, 40))
    data[rng.random((3, 40)) < 0.2] = np.nan
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    with psycopg.connect(database_url) as db:
        assert sql_alpha(db, data, "interval") == pytest.approx(expected, abs=1e-9)


def test_alpha_is_undefined_without_pairable_values(database_url):
    with psycopg.connect(database_url) as db:
        # every unit rated once: nothing to compare
        assert db.execute("SELECT core.krippendorff_alpha('{1,2,3}', '{a,b,a}', 'nominal')").fetchone()[0] is None
        # one value only: no disagreement possible
        assert db.execute("SELECT core.krippendorff_alpha('{1,1,2,2}', '{a,a,a,a}', 'nominal')").fetchone()[0] is None
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            db.execute("SELECT core.krippendorff_alpha('{1,1}', '{a,b}', 'interval')")


def _blob(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    ang = np.arctan2(yy - cy, xx - cx)
    r = rng.uniform(5, min(h, w) / 2) * (1 + 0.3 * np.sin(rng.integers(2, 9) * ang + rng.uniform(0, 6)))
    m = np.hypot(xx - cx, yy - cy) < r
    m |= rng.random((h, w)) < 0.01  # specks, so runs start and end everywhere (first pixel included)
    return m


@pytest.mark.parametrize("seed", range(10))
def test_mask_overlap_equals_numpy(database_url, seed):
    from pycocotools import mask as coco

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 300)), int(rng.integers(20, 300))
    a, b = _blob(rng, h, w), _blob(rng, h, w)

    def rle(m):
        return {"size": [h, w], "counts": coco.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()}

    inter = int((a & b).sum())
    with psycopg.connect(database_url) as db:
        got = db.execute("SELECT core.mask_overlap(%s::jsonb, %s::jsonb)",
                         (psycopg.types.json.Jsonb(rle(a)), psycopg.types.json.Jsonb(rle(b)))).fetchone()[0]
    assert got["intersection_px"] == inter
    assert (got["area_a_px"], got["area_b_px"]) == (int(a.sum()), int(b.sum()))
    assert float(got["dice"]) == pytest.approx(2 * inter / (a.sum() + b.sum()), abs=1e-12)
    assert float(got["iou"]) == pytest.approx(inter / (a | b).sum(), abs=1e-12)


def _ratings(rng: np.random.Generator, images: int, raters: int, labels: int, p: float):
    """Each rater gives the true label with probability p, else one at random: population nominal alpha = p²
    (uniform labels: expected disagreement 1 - 1/K, observed (1 - p²)(1 - 1/K))."""
    truth = rng.integers(0, labels, images)
    units, values = [], []
    for u in range(images):
        for _ in range(raters):
            v = truth[u] if rng.random() < p else rng.integers(0, labels)
            units.append(u)
            values.append(str(int(v)))
    return units, values


def test_bootstrap_interval_is_reproducible(database_url):
    units, values = _ratings(np.random.default_rng(7), 80, 3, 4, 0.7)
    q = "SELECT core.alpha_bootstrap(%s::bigint[], %s::text[], 'nominal', 500, %s)"
    with psycopg.connect(database_url) as db:
        a = db.execute(q, (units, values, 1)).fetchone()[0]
        b = db.execute(q, (units, values, 1)).fetchone()[0]
        c = db.execute(q, (units, values, 2)).fetchone()[0]
        plain = db.execute("SELECT core.krippendorff_alpha(%s::bigint[], %s::text[], 'nominal')",
                           (units, values)).fetchone()[0]
    assert a == b and (a["low"], a["high"]) != (c["low"], c["high"])
    assert a["low"] < a["alpha"] == plain < a["high"] and a["images"] == 80


def test_bootstrap_interval_covers_the_true_alpha_about_95_percent(database_url):
    rng = np.random.default_rng(2026)
    p = 0.7
    covered = 0
    with psycopg.connect(database_url) as db:
        for sim in range(200):
            units, values = _ratings(rng, 60, 3, 4, p)
            r = db.execute("SELECT core.alpha_bootstrap(%s::bigint[], %s::text[], 'nominal', 200, %s)",
                           (units, values, sim)).fetchone()[0]
            covered += r["low"] <= p * p <= r["high"]
    # a percentile interval: near 95 % (190 of 200), a little under for a ratio estimator at 60 images
    print(f"bootstrap coverage: {covered} of 200")
    assert 176 <= covered <= 199, covered
