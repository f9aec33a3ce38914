"""Importing labels from another tool: the command line over a JSON Lines file, and the same function over HTTP."""
from __future__ import annotations

import json

import psycopg
import pytest

from conftest import run_cli
from sqlcall import PASSWORD, act, call, make_team


@pytest.fixture(scope="module")
def lab(database_url):
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, "labels", ann=["annotator"])
        for code, name in (("MEL", "Melanoma"), ("NV", "Melanocytic nevus")):
            call(conn, team["admin"], "admin", "upsert_taxonomy_node", project_id=team["project"], code=code,
                 name=name)
        with conn.transaction():
            act(conn, team["admin"], "admin")
            conn.execute("SELECT api.register_image(%s, 'l/' || i, md5('lab' || i || %s) || md5(i::text), 64, 64, "
                         "'image/png') FROM generate_series(1, 3) i", (team["project"], str(team["project"])))
        team["shas"] = [r[0] for r in conn.execute("SELECT sha256 FROM core.image WHERE project_id = %s ORDER BY id",
                                                   (team["project"],))]
    return team


def suggestions(database_url, project) -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT i.sha256, s.model_name, s.payload -> 'classes' -> 0 ->> 'code' "
                            "FROM core.ai_suggestion s JOIN core.image i ON i.id = s.image_id "
                            "WHERE i.project_id = %s ORDER BY s.id", (project,)).fetchall()


def test_the_command_line_imports_a_jsonl_file_in_batches(lab, database_url, tmp_path):
    path = tmp_path / "labels.jsonl"
    records = [{"sha256": lab["shas"][0], "class": {"code": "MEL"}, "description": "old tool"},
               {"sha256": lab["shas"][1], "class": "nv"}, {"sha256": "0" * 64, "class": "MEL"},
               {"sha256": lab["shas"][2], "class_code": "BCC"}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = run_cli("import-labels", "--project", str(lab["project"]), "--file", str(path), "--as",
                  lab["emails"]["admin"], "--source", "legacy")
    assert out.returncode == 0, out.stderr
    assert "imported 3 labels" in out.stdout and "1 records name an image not in the project" in out.stdout
    assert "BCC" in out.stdout
    assert suggestions(database_url, lab["project"]) == [(lab["shas"][0], "import:legacy", "MEL"),
                                                         (lab["shas"][1], "import:legacy", "NV"),
                                                         (lab["shas"][2], "import:legacy", None)]


def test_over_http_bad_batches_change_nothing_and_annotators_are_refused(app_server, lab, database_url):
    before = suggestions(database_url, lab["project"])
    with app_server.client() as c:
        def token(who):
            r = c.post("/auth/login", json={"email": lab["emails"][who], "password": PASSWORD})
            return {"Authorization": f"Bearer {r.json()['token']}"}
        admin, ann = token("admin"), token("ann")
        bad = c.post("/rpc/import_labels", headers=admin, json={"project_id": lab["project"], "records": [
            {"sha256": lab["shas"][0], "class": "MEL"}, {"class": "MEL"}]})
        assert bad.status_code == 400 and bad.json()["details"]["field"] == "records[1].sha256"
        assert c.post("/rpc/import_labels", headers=ann, json={"project_id": lab["project"], "records": []}
                      ).status_code == 403
        assert suggestions(database_url, lab["project"]) == before
        ok = c.post("/rpc/import_labels", headers=admin, json={"project_id": lab["project"], "source": "http",
                                                                "records": [{"sha256": lab["shas"][0], "class": "NV"}]})
        assert ok.status_code == 200 and ok.json()["imported"] == 1
    assert suggestions(database_url, lab["project"])[-1] == (lab["shas"][0], "import:http", "NV")
