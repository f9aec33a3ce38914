"""Call api functions over a real connection exactly as the HTTP layer does: role + claims, then the call."""
from __future__ import annotations

import json
import uuid

import psycopg
from psycopg.types.json import Jsonb


def act(conn: psycopg.Connection, user_id: int | None, role: str) -> None:
    claims = {"sub": user_id, "role": f"dl_{role}", "request_id": uuid.uuid4().hex} if user_id else {}
    conn.execute("SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                 (f"dl_{role}", json.dumps(claims)))


def call(conn: psycopg.Connection, _uid: int | None, _role: str, _fn: str, **args):
    """One api call in its own transaction; returns the decoded JSON result."""
    named = ", ".join(f"{k} => %({k})s" for k in args)
    params = {k: Jsonb(v) if isinstance(v, (dict, list)) and not _is_array(k) else v for k, v in args.items()}
    with conn.transaction():
        act(conn, _uid, _role)
        return conn.execute(f"SELECT api.{_fn}({named})", params).fetchone()[0]


def _is_array(arg: str) -> bool:
    return arg in {"roles", "expertise", "source_classes", "pool_user_ids", "synonyms"}


def make_user(conn: psycopg.Connection, email: str, roles: list[str], level: int = 1) -> int:
    with conn.transaction():
        return conn.execute(
            "INSERT INTO auth.\"user\" (email, display_name, password_hash, roles, review_level) "
            "VALUES (%s, %s, crypt(%s, gen_salt('bf', 4)), %s::auth.app_role[], %s) RETURNING id",
            (email, email.split("@")[0], PASSWORD, roles, level)).fetchone()[0]


def make_project(conn: psycopg.Connection, tag: str, n_images: int, annotators: int, reviewers: int,
                 stages: int = 1) -> dict:
    """A project with people, one class, and n_images items; returns their ids."""
    admin = make_user(conn, f"admin-{tag}@t.org", ["admin"])
    project = call(conn, admin, "admin", "create_project", name=f"p-{tag}", review_stages=stages)["id"]
    ann_emails = [f"a{i}-{tag}@t.org" for i in range(annotators)]
    rev_emails = [f"r{i}-{tag}@t.org" for i in range(reviewers)]
    anns = [make_user(conn, e, ["annotator"]) for e in ann_emails]
    revs = [make_user(conn, e, ["reviewer"], level=2) for e in rev_emails]
    for u in anns + revs:
        call(conn, admin, "admin", "add_project_member", project_id=project, user_id=u)
    cls = call(conn, admin, "admin", "upsert_taxonomy_node", project_id=project, code="MEL", name="Melanoma")["id"]
    with conn.transaction():
        act(conn, admin, "admin")
        conn.execute("SELECT api.register_image(%s, 'k/' || i, encode(sha256((%s || i)::bytea), 'hex'), 100, 100, "
                     "'image/png') FROM generate_series(1, %s) i", (project, tag, n_images))
    # the rule after the images: one generate for all of them (the upload trigger would run once per image)
    rule = call(conn, admin, "admin", "create_work_rule", project_id=project, name="all", max_items=10_000_000)
    call(conn, admin, "admin", "generate_work_items", rule_id=rule["id"])
    return {"admin": admin, "project": project, "annotators": anns, "reviewers": revs, "class": cls,
            "annotator_emails": ann_emails, "reviewer_emails": rev_emails}


PASSWORD = "correct horse battery"  # every make_user user's password


def make_team(conn: psycopg.Connection, name: str, **people: list[str]) -> dict:
    """An admin, the named people (name=roles), and a project they all belong to. Returns the project id, each
    person's id under their name (the admin's under 'admin') and everyone's email under 'emails'."""
    tag = uuid.uuid4().hex[:8]
    team: dict = {"emails": {}}
    for who, roles in {"admin": ["admin"], **people}.items():
        email = f"{who}-{tag}@{name}.test"
        team[who] = make_user(conn, email, roles)
        team["emails"][who] = email
    team["project"] = call(conn, team["admin"], "admin", "create_project", name=f"{name}-{tag}")["id"]
    for who in people:
        call(conn, team["admin"], "admin", "add_project_member", project_id=team["project"], user_id=team[who])
    return team
