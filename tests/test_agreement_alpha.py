"""Krippendorff's alpha in SQL (core.krippendorff_alpha) equals the `krippendorff` package on random reliability
data with missing values, under the nominal, ordinal and interval metrics."""
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
