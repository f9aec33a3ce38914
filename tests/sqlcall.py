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


# The roles each make_user person is meant to have wherever a helper puts them: roles are held per project.
INTENT: dict[int, tuple[list[str], int]] = {}


def make_user(conn: psycopg.Connection, email: str, roles: list[str], level: int = 1) -> int:
    with conn.transaction():
        uid = conn.execute(
            "INSERT INTO auth.\"user\" (email, display_name, password_hash) "
            "VALUES (%s, %s, crypt(%s, gen_salt('bf', 4))) RETURNING id",
            (email, email.split("@")[0], PASSWORD)).fetchone()[0]
    INTENT[uid] = (list(roles), level)
    return uid


def make_org(conn: psycopg.Connection, name: str, admin: int | None = None) -> int:
    """An organization (as the operator makes one), with `admin` as its admin."""
    with conn.transaction():
        org = conn.execute("INSERT INTO core.organization (name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]
        if admin is not None:
            conn.execute("INSERT INTO core.org_member (organization_id, user_id, admin) VALUES (%s, %s, true)",
                         (org, admin))
    return org


def join(conn: psycopg.Connection, admin: int, project: int, user: int) -> None:
    """Puts a person in the project's organization and the project with the roles make_user gave them."""
    roles, level = INTENT.get(user, (["annotator"], 1))
    with conn.transaction():
        conn.execute("INSERT INTO core.org_member (organization_id, user_id, analyst) "
                     "SELECT organization_id, %s, %s FROM core.project WHERE id = %s ON CONFLICT DO NOTHING",
                     (user, "analyst" in roles, project))
    project_roles = [r for r in roles if r in ("annotator", "reviewer", "admin")]
    if project_roles or "analyst" not in roles:
        call(conn, admin, "admin", "add_project_member", project_id=project, user_id=user, roles=project_roles,
             review_level=level)


def new_project(conn: psycopg.Connection, admin: int, name: str, stages: int = 1) -> int:
    """A project in an organization of its own, administered by `admin`."""
    org = make_org(conn, f"org-{name}", admin)
    return call(conn, admin, "admin", "create_project", name=name, review_stages=stages, organization_id=org)["id"]


def make_project(conn: psycopg.Connection, tag: str, n_images: int, annotators: int, reviewers: int,
                 stages: int = 1) -> dict:
    """A project with people, one class, and n_images items; returns their ids."""
    admin = make_user(conn, f"admin-{tag}@t.org", ["admin"])
    project = new_project(conn, admin, f"p-{tag}", stages)
    ann_emails = [f"a{i}-{tag}@t.org" for i in range(annotators)]
    rev_emails = [f"r{i}-{tag}@t.org" for i in range(reviewers)]
    anns = [make_user(conn, e, ["annotator"]) for e in ann_emails]
    revs = [make_user(conn, e, ["reviewer"], level=2) for e in rev_emails]
    for u in anns + revs:
        join(conn, admin, project, u)
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
    """An admin, the named people (name=roles), and a project they all belong to (in an organization of its own).
    Returns the project id, each person's id under their name (the admin's under 'admin') and everyone's email
    under 'emails'."""
    tag = uuid.uuid4().hex[:8]
    team: dict = {"emails": {}}
    for who, roles in {"admin": ["admin"], **people}.items():
        email = f"{who}-{tag}@{name}.test"
        team[who] = make_user(conn, email, roles)
        team["emails"][who] = email
    team["project"] = new_project(conn, team["admin"], f"{name}-{tag}")
    for who in people:
        join(conn, team["admin"], team["project"], team[who])
    return team
