"""The demo organization and project: default taxonomy and descriptor schema, a person per role, images and rules
with items.

Everything after the operator and the first admin goes through the same api functions they call over HTTP.
"""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from ..images.imaging import clean
from ..images.storage import Storage
from .lesions import lesion

HERE = Path(__file__).parent
PROJECT = "Demo dermoscopy"
ORGANIZATION = "Demo clinic"
PASSWORD = "dermlabel-demo"
OPERATOR = ("operator@dermlabel.test", "Olga Operator")
USERS = [  # email, name, roles (in the demo project; admin: of the organization; analyst: of the organization),
    #        expertise, review level
    ("admin@dermlabel.test", "Ada Admin", ["admin"], [], 1),
    ("ann1@dermlabel.test", "Dr Anna Kowalska", ["annotator"], ["dermoscopy"], 1),
    ("ann2@dermlabel.test", "Dr Ben Osei", ["annotator"], [], 1),
    ("ann3@dermlabel.test", "Dr Chen Li", ["annotator", "reviewer"], ["dermoscopy"], 1),
    ("rev1@dermlabel.test", "Dr Dana Rossi", ["reviewer"], [], 1),
    ("rev2@dermlabel.test", "Prof Emil Berg", ["reviewer"], [], 2),
    ("analyst@dermlabel.test", "Fay Analyst", ["analyst"], [], 1),
]


def _call(conn: psycopg.Connection, caller: int, fn: str, **args):
    named = ", ".join(f"{k} => %({k})s" for k in args)
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                 (json.dumps({"sub": caller, "request_id": "seed"}),))
    return conn.execute(f"SELECT api.{fn}({named})", args).fetchone()[0]


def seed(database_url: str, storage: Storage, images: int = 48, out=print) -> bool:
    """Creates the demo project once; returns False when it already exists."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        if conn.execute("SELECT 1 FROM core.organization WHERE name = %s", (ORGANIZATION,)).fetchone():
            out(f"demo project '{PROJECT}' already seeded")
            return False
        # the operator and the first admin are the rows the api cannot create (it needs them to call it)
        made = []
        for email, name in (OPERATOR, USERS[0][:2]):
            made.append(conn.execute(
                "INSERT INTO auth.\"user\" (email, display_name, password_hash, operator) "
                "VALUES (%s, %s, crypt(%s, gen_salt('bf', 10)), %s) "
                "ON CONFLICT (email) DO UPDATE SET operator = EXCLUDED.operator RETURNING id",
                (email, name, PASSWORD, email == OPERATOR[0])).fetchone()[0])
        operator, admin = made
        org = _call(conn, operator, "create_organization", name=ORGANIZATION)["id"]
        _call(conn, operator, "add_organization_member", organization_id=org, email=USERS[0][0], admin=True)
        ids = {USERS[0][0]: admin}
        for email, name, roles, expertise, level in USERS[1:]:
            ids[email] = _call(conn, admin, "create_user", email=email, display_name=name, password=PASSWORD,
                               organization_id=org, analyst="analyst" in roles)["id"]
        project = _call(conn, admin, "create_project", name=PROJECT, organization_id=org,
                        description="Synthetic demo images for trying DermLabel end to end.", review_stages=1)["id"]
        for email, name, roles, expertise, level in USERS[1:]:
            if set(roles) & {"annotator", "reviewer"}:
                _call(conn, admin, "add_project_member", project_id=project, user_id=ids[email],
                      roles=[r for r in roles if r != "analyst"], expertise=expertise, review_level=level)
        for node in json.loads((HERE / "taxonomy.json").read_text()):
            _call(conn, admin, "upsert_taxonomy_node", project_id=project, code=node["code"], name=node["name"],
                  parent_code=node.get("parent"), synonyms=node.get("synonyms", []), icd10=node.get("icd10"),
                  snomed_ct=node.get("snomed_ct"), next_steps=node.get("next_steps", ""))
        _call(conn, admin, "set_descriptor_schema", project_id=project,
              fields=Jsonb(json.loads((HERE / "descriptors.json").read_text())))
        # triage: the AI putting >= 50 % on a malignant class puts the image first in everyone's queue
        _call(conn, admin, "configure_red_flags", project_id=project, high_risk_codes=["NEO_MAL"], threshold=Decimal("0.5"),
              priority=100)
        double = _call(conn, admin, "create_work_rule", project_id=project, name="Dermoscopy, double read",
                       max_items=200, priority=5, source_classes=["dermoscopy"], annotations_per_image=2)["id"]
        single = _call(conn, admin, "create_work_rule", project_id=project, name="Clinical photographs",
                       max_items=200, priority=0, source_classes=["clinical"])["id"]
        sites = ["trunk_back", "face", "lower_limb", "upper_limb", "trunk_front", "scalp"]
        for n in range(images):
            source = "dermoscopy" if n % 2 == 0 else "clinical"
            png, traits = lesion(n, dermoscopy=source == "dermoscopy")
            img = clean(png, 40 * 1024 * 1024)  # the same path an upload takes
            key = f"images/{project}/{img.sha256}.{img.ext}"
            asyncio.run(storage.put(key, img.data, img.media_type))
            asyncio.run(storage.put(f"thumbs/{project}/{img.sha256}.jpg", img.thumb, "image/jpeg"))
            _call(conn, admin, "register_image", project_id=project, storage_key=key, sha256=img.sha256,
                  width=img.width, height=img.height, media_type=img.media_type, source_class=source,
                  upload_batch="demo-1", metadata=Jsonb({"body_site": sites[n % len(sites)], "synthetic": traits}))
        items = conn.execute("SELECT count(*) FROM core.work_item WHERE rule_id IN (%s, %s)",
                             (double, single)).fetchone()[0]
    out(f"seeded '{PROJECT}' in '{ORGANIZATION}': {len(USERS) + 1} users, {images} images, {items} work items")
    return True
