"""The README's analyst path: a DBA gives an analyst's account a database login; as it, psql (here psycopg) reads
analytics.* for the analyst's organization only, and the materialized views and core tables not at all."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sqlcall import join, make_project, make_user


def test_an_analyst_login_sees_its_organizations_rows_only(database_url):
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(database_url) as conn:
        mine = make_project(conn, f"m{tag}", n_images=2, annotators=0, reviewers=0)
        other = make_project(conn, f"o{tag}", n_images=2, annotators=0, reviewers=0)
        analyst = make_user(conn, f"an-{tag}@t.org", ["analyst"])
        join(conn, mine["admin"], mine["project"], analyst)
        login = f"analyst_{tag}"
        conn.execute("SELECT auth.create_analyst_login(%s, %s, 'a long secret password')", (f"an-{tag}@t.org", login))
        conn.execute("SELECT metrics.refresh_all('test')")
        conn.commit()
    params = conninfo_to_dict(database_url)
    params.update(user=login, password="a long secret password")
    with psycopg.connect(make_conninfo(**params)) as conn:
        projects = {r[0] for r in conn.execute("SELECT project_id FROM analytics.queue_by_status")}
        assert mine["project"] in projects and other["project"] not in projects
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM metrics.queue_by_status")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM core.work_item")
