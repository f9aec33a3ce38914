"""Taxonomy type-ahead on a 5,000-node tree: api.search_taxonomy latency as an annotator calls it.

Prints p50/p95/p99 and max over varied queries (prefixes, synonyms, codes, typos). Builds its own project
inside one transaction and rolls it back, so it leaves nothing behind.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _people import join, organization  # noqa: E402

WORDS = ["melanoma", "nevus", "carcinoma", "keratosis", "dermatitis", "psoriasis", "lentigo", "angioma", "tinea",
         "eczema", "vitiligo", "urticaria", "lichen", "pemphigus", "rosacea", "acne", "wart", "scabies", "lupus",
         "morphea", "granuloma", "sarcoma", "lymphoma", "folliculitis", "cellulitis", "impetigo", "herpes", "zoster"]
QUALIFIERS = ["acral", "nodular", "superficial", "congenital", "atypical", "chronic", "acute", "infantile", "plaque",
              "guttate", "pustular", "bullous", "linear", "segmental", "eruptive", "familial", "solar", "seborrheic"]


def main(nodes: int = 5000, queries: int = 1000) -> None:
    rnd = random.Random(42)
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        tag = uuid.uuid4().hex
        org, admin = organization(conn, f"bench taxonomy {tag}", f"taxonomy-bench-{tag}@t.org", display_name="bench")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": admin}),))
        project = conn.execute("SELECT (api.create_project('bench taxonomy', organization_id => %s) "
                               "->> 'id')::bigint", (org,)).fetchone()[0]
        join(conn, project, [admin], admin=True, annotator=True)  # searches as an annotator of the project
        # a realistic shape: 28 families, qualifiers below, variants below those
        rows = []
        for i in range(nodes):
            fam = WORDS[i % len(WORDS)]
            name = f"{rnd.choice(QUALIFIERS)} {fam} {i}" if i >= len(WORDS) else fam
            parent = None if i < len(WORDS) else rows[rnd.randrange(0, min(i, 800))][0]
            rows.append((f"N{i}", name, parent, [f"{fam[:5]}-{i}", f"{rnd.choice(QUALIFIERS)} {fam}"],
                         f"L{i % 99:02d}.{i % 10}"))
        for code, name, parent, syn, icd in rows:
            conn.execute("SELECT api.upsert_taxonomy_node(%s, %s, %s, %s, %s, %s)",
                         (project, code, name, parent, syn, icd))
        conn.execute("ANALYZE core.taxonomy_node")
        conn.execute("SELECT set_config('role', 'dl_annotator', true)")
        terms = [w[:n] for w in WORDS for n in (3, 5, len(w))] + QUALIFIERS + ["N4711", "L42", "melanomma",
                                                                                "keratsis", "superficial spreading"]
        lat = []
        for _ in range(queries):
            q = rnd.choice(terms)
            t = time.perf_counter()
            conn.execute("SELECT api.search_taxonomy(%s, %s, 20)", (project, q)).fetchone()
            lat.append((time.perf_counter() - t) * 1000)
        conn.rollback()
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]  # noqa: E731
    print(f"search_taxonomy on {nodes} nodes, {queries} queries (one connection, as dl_annotator)")
    print(f"  p50 {pct(50):.2f} ms   p95 {pct(95):.2f} ms   p99 {pct(99):.2f} ms   max {lat[-1]:.2f} ms   "
          f"mean {statistics.mean(lat):.2f} ms")


if __name__ == "__main__":
    main()
