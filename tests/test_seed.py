"""python -m app seed: the demo project, once, with a user per role, the default taxonomy and items."""
import psycopg

from conftest import run_cli


def test_seed_creates_a_usable_demo_project_once(scratch_db, tmp_path):
    env = {"DATABASE_URL": scratch_db, "DL_IMAGE_DIR": str(tmp_path / "images")}
    assert run_cli("migrate", env=env).returncode == 0
    first = run_cli("seed", env=env)
    assert first.returncode == 0, first.stderr
    assert "seeded 'Demo dermoscopy' in 'Demo clinic': 8 users, 48 images" in first.stdout
    again = run_cli("seed", env=env)
    assert again.returncode == 0 and "already seeded" in again.stdout
    with psycopg.connect(scratch_db) as conn:
        roles = {r[0] for r in conn.execute(
            "SELECT unnest(array_remove(ARRAY[CASE WHEN annotator THEN 'annotator' END, CASE WHEN reviewer "
            "THEN 'reviewer' END, CASE WHEN admin THEN 'admin' END], NULL)) FROM core.project_member "
            "UNION SELECT 'analyst' FROM core.org_member WHERE analyst UNION SELECT 'org admin' FROM core.org_member "
            "WHERE admin UNION SELECT 'operator' FROM auth.\"user\" WHERE operator")}
        codes = {r[0] for r in conn.execute("SELECT code FROM core.taxonomy_node")}
        items = dict(conn.execute("SELECT r.name, count(*) FROM core.work_item w JOIN core.work_rule r "
                                  "ON r.id = w.rule_id GROUP BY 1").fetchall())
        fields = [r[0] for r in conn.execute("SELECT key FROM core.descriptor_field ORDER BY sort_order")]
        login = conn.execute("SELECT api.login('ann1@dermlabel.test', 'dermlabel-demo') ->> 'ok'").fetchone()[0]
    assert roles == {"annotator", "reviewer", "admin", "analyst", "org admin", "operator"}
    # the seven common dermoscopic classes and the top-level groups
    assert {"MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC", "NEO_MAL", "NEO_BEN", "NEO_PRE", "INF", "INFX", "PIG",
            "OTH"} <= codes
    assert items == {"Dermoscopy, double read": 48, "Clinical photographs": 24}
    assert fields[:3] == ["colours", "symmetry", "border"] and "fitzpatrick" in fields
    assert login == "true"
    # every image has its bytes and thumbnail in storage, under the key the database records
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("SELECT storage_key, sha256, project_id, width FROM core.image").fetchall()
    assert len(rows) == 48 and all(w == 1024 for *_, w in rows)
    for key, sha, project, _ in rows:
        assert (tmp_path / "images" / key).stat().st_size > 10_000
        assert (tmp_path / "images" / "thumbs" / str(project) / f"{sha}.jpg").exists()
