"""The walls over HTTP: per-project roles read at every request, organization admins kept to their organization,
nothing anonymous beyond sign-in and health."""
from __future__ import annotations

import uuid

import psycopg

from sqlcall import PASSWORD, make_project, make_user, new_project
from test_http_rpc import token


def test_a_role_granted_or_revoked_mid_session_applies_at_the_next_request(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        w = make_project(conn, uuid.uuid4().hex[:8], n_images=2, annotators=1, reviewers=0)
    ann = w["annotators"][0]
    with app_server.client() as c:
        headers = token(c, database_url, ann)
        admin = token(c, database_url, w["admin"])
        assert c.post("/rpc/next_review", json={"project_id": w["project"]}, headers=headers).status_code == 403
        r = c.post("/rpc/set_project_roles", headers=admin,
                   json={"project_id": w["project"], "user_id": ann, "roles": ["annotator", "reviewer"]})
        assert r.status_code == 200, r.text
        # the same token, no new sign-in: the reviewer role is read from the tables at this request
        r = c.post("/rpc/next_review", json={"project_id": w["project"]}, headers=headers)
        assert r.status_code == 200 and r.json()["reason"] == "queue_empty"
        assert set(c.get("/rpc/me", headers=headers).json()["roles"]) == {"annotator", "reviewer"}
        r = c.post("/rpc/set_project_roles", headers=admin, json={"project_id": w["project"], "user_id": ann, "roles": []})
        assert r.status_code == 200
        for fn in ("next_item", "next_review"):  # revoked: refused at once, with the same token
            assert c.post(f"/rpc/{fn}", json={"project_id": w["project"]}, headers=headers).status_code == 403
        assert c.get("/rpc/me", headers=headers).status_code == 200  # still someone: may see who they are


def test_an_admin_of_another_organization_cannot_take_over_an_account(app_server, database_url):
    with psycopg.connect(database_url) as conn:
        victim = make_project(conn, uuid.uuid4().hex[:8], n_images=1, annotators=1, reviewers=0)
        mallory = make_user(conn, f"mallory-{uuid.uuid4().hex[:6]}@t.org", ["admin"])
        new_project(conn, mallory, f"m-{uuid.uuid4().hex[:6]}")
        target = victim["annotators"][0]
        email = victim["annotator_emails"][0]
    with app_server.client() as c:
        evil = token(c, database_url, mallory)
        for fn, args in (("set_password", {"user_id": target, "new_password": "taken over now"}),
                         ("set_user_active", {"user_id": target, "active": False}),
                         ("set_vacation", {"user_id": target, "on_vacation": True}),
                         ("project_overview", {"project_id": victim["project"]})):
            r = c.post(f"/rpc/{fn}", json=args, headers=evil)
            assert r.status_code == 404 and r.json()["code"] == "P0002", (fn, r.text)
        listed = c.post("/rpc/list_users", json={}, headers=evil).json()
        assert email not in str(listed)
        # the account is untouched: the old password still signs in, the person is not on vacation
        r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200 and r.json()["user"]["on_vacation"] is False


def test_anonymous_callers_reach_sign_in_and_health_only(app_server):
    with app_server.client() as c:
        assert c.get("/rpc/health").status_code == 200
        # the queue counts of every project were anonymous before; now no endpoint serves them
        assert c.get("/rpc/queue_stats").status_code == 404
        assert c.get("/rpc/ai_queue_stats").status_code == 404
        assert c.post("/rpc/list_organizations", json={}).status_code == 401
        # /metrics (which has the counts) answers clients on this machine, the operator's Prometheus
        assert c.get("/metrics").status_code == 200
