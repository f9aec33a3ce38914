"""What the benches share about people: an organization with its admin, people put into a project with their roles
there in bulk, and live sessions for callers that never signed in. Plain SQL as the superuser the benches connect
as (the benches measure the work, not the onboarding); the caller commits, or runs in autocommit."""
from __future__ import annotations

from typing import Iterable

import psycopg


def organization(conn: psycopg.Connection, name: str, admin_email: str, password: str | None = None,
                 display_name: str = "admin") -> tuple[int, int]:
    """A new organization and a new account that administers it (password hashed when given): (org id, admin id).
    The admin may then call api.create_project(..., organization_id => org) with {"sub": admin} as claims."""
    admin = conn.execute(
        "INSERT INTO auth.\"user\" (email, display_name, password_hash) "
        "VALUES (%s, %s, CASE WHEN %s::text IS NOT NULL THEN crypt(%s, gen_salt('bf', 4)) END) RETURNING id",
        (admin_email, display_name, password, password)).fetchone()[0]
    org = conn.execute("INSERT INTO core.organization (name, created_by) VALUES (%s, %s) RETURNING id",
                       (name, admin)).fetchone()[0]
    conn.execute("INSERT INTO core.org_member (organization_id, user_id, admin) VALUES (%s, %s, true)", (org, admin))
    return org, admin


def join(conn: psycopg.Connection, project: int, users: Iterable[int], *, annotator: bool = False,
         reviewer: bool = False, admin: bool = False, review_level: int = 1, expertise: Iterable[str] = ()) -> None:
    """Puts `users` in the project's organization (if not yet there) and in the project with these roles, review
    level and expertise (replacing what they held there), two statements whatever their number."""
    users = list(users)
    conn.execute("INSERT INTO core.org_member (organization_id, user_id) "
                 "SELECT p.organization_id, u FROM core.project p, unnest(%s::bigint[]) u WHERE p.id = %s "
                 "ON CONFLICT DO NOTHING", (users, project))
    conn.execute("INSERT INTO core.project_member AS m (project_id, user_id, annotator, reviewer, admin, review_level, "
                 "expertise) SELECT %s, u, %s, %s, %s, %s, %s FROM unnest(%s::bigint[]) u "
                 "ON CONFLICT (project_id, user_id) DO UPDATE SET annotator = EXCLUDED.annotator, "
                 "reviewer = EXCLUDED.reviewer, admin = EXCLUDED.admin, review_level = EXCLUDED.review_level, "
                 "expertise = EXCLUDED.expertise",
                 (project, annotator, reviewer, admin, review_level, list(expertise), users))


def sessions(conn: psycopg.Connection, users: Iterable[int]) -> dict[int, str]:
    """A live sign-in session for each of `users` (as api.login opens one), for benches that call the api as the
    app does (auth.begin_request checks the session) without signing in over HTTP: {user id: session id}."""
    return {uid: str(sid) for uid, sid in conn.execute(
        "INSERT INTO auth.session (user_id, method) SELECT u, 'password' FROM unnest(%s::bigint[]) u "
        "RETURNING user_id, id", (list(users),))}
