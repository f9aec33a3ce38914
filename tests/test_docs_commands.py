"""The docs pages' commands work, as a reader would type them.

Every fenced block preceded by `<!-- tested -->` in README.md and docs/*.md runs here against a real app, the
reference AI service, a real Orthanc (DICOMweb) and a real PostgreSQL database seeded with the demo `make run` seeds:

- `sh` blocks run one page at a time in one bash (variables carry from block to block, as in a reader's terminal),
  command by command, with what a reader has and the test must stand in for substituted: the app's and the
  reference service's ports, the psql connection string of the demo database, the PACS's URL and the UIDs it holds,
  an image's SHA-256 (see SUBSTITUTIONS). Every `curl` must get a 2xx answer and every command must exit 0, unless
  the answer documented under it is an error. A line `# → …` under a command is its documented answer: JSON is
  compared by shape (the documented keys, nesting and value types must be there; `…` stands for more), text by
  pattern (`…` matches anything, numbers match any number).
- `sql` blocks run with psql as the database owner (ON_ERROR_STOP).
- `python` blocks are executed; a `genuine(headers, body, secret)` they define must accept a webhook delivery signed
  by the worker's own signing function and refuse a tampered one.

Besides the blocks, for every page: each `api.<function>` and `/rpc/<function>` named exists, with the argument names
given; each `schema.object` named exists; each `GET|POST /path` named is a route of the app; the access table of
docs/api.md matches the grants; and docs/analysts.md lists every column of every analytics view."""
from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pydicom
import pytest
from PIL import Image
from psycopg.conninfo import conninfo_to_dict

from ai_services import round_lesion, start_reference, stop
from conftest import JWT_SECRET, ROOT, run_cli, start_app, stop_app, url_for

PAGES = ["docs/operators.md", "docs/dbas.md", "docs/analysts.md", "docs/ml-engineers.md", "docs/api.md", "README.md"]
ALL_PAGES = PAGES + ["docs/web-ui.md", "docs/segmentation.md", "docs/agreement.md"]
ANALYST_LOGIN = "fay"  # the login docs/dbas.md makes and docs/analysts.md uses
DEMO_PASSWORD = "dermlabel-demo"
VENV_BIN = str(Path(sys.executable).parent)


# -- the blocks of a page --------------------------------------------------------------------------------------------

@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)  # the `# → …` lines under it

    @property
    def expects_error(self) -> bool:
        return any(_is_error(e) for e in self.expected)


@dataclass
class Block:
    page: str
    lang: str
    line: int
    text: str


def blocks_marked_tested(page: str) -> list[Block]:
    lines = (ROOT / page).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "<!-- tested -->":
            fence = re.match(r"^```(\w+)\s*$", lines[i + 1]) if i + 1 < len(lines) else None
            assert fence, f"{page}:{i + 1}: <!-- tested --> must be followed by a fenced block with a language"
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(page, fence.group(1), i + 3, "\n".join(lines[i + 2:end])))
            i = end
        i += 1
    return blocks


def commands(block: Block) -> list[Command]:
    """A shell block as the commands a reader types: continued lines (a trailing backslash, an open quote) joined."""
    out: list[Command] = []
    pending: list[str] = []
    for n, line in enumerate(block.text.splitlines(), block.line):
        stripped = line.strip()
        if not pending:
            if stripped.startswith("# →"):
                assert out, f"{block.page}:{n}: a documented answer before any command"
                out[-1].expected.append(stripped[len("# →"):].strip())
                continue
            if not stripped or stripped.startswith("#"):
                continue
            start = n
        pending.append(line)
        text = "\n".join(pending)
        if text.endswith("\\"):
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append(Command(text, start))
        pending = []
    assert not pending, f"{block.page}: unfinished command at the end of a block: {pending}"
    return out


# -- documented answers ----------------------------------------------------------------------------------------------

def _is_error(expected: str) -> bool:
    if expected.startswith(("error:", "ERROR:")):
        return True
    shape = _json_shape(expected)
    return isinstance(shape, dict) and {"code", "message"} <= set(shape)


def _json_shape(text: str):
    """A documented JSON answer with `…` (or `...`) standing for more members or elements; None if not JSON."""
    if not text.startswith(("{", "[")):
        return None
    out, in_string, escaped, i = [], False, False, 0
    while i < len(text):
        ch = text[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            i += 1
            continue
        ellipsis = 1 if ch == "…" else 3 if text.startswith("...", i) else 0
        if not ellipsis:
            in_string = ch == '"'
            out.append(ch)
            i += 1
            continue
        # drop it with the comma before it, or after it when it comes first in its object or list
        before = "".join(out).rstrip()
        i += ellipsis
        if before.endswith(","):
            out = list(before[:-1])
        elif text[i:].lstrip().startswith(","):
            i = len(text) - len(text[i:].lstrip()) + 1
    return json.loads("".join(out))


def shape_problems(documented, actual, where: str = "") -> list[str]:
    """What of the documented shape the actual answer lacks: keys, nesting, value types."""
    if documented is None or actual is None:
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'answer'}: expected an object, got {type(actual).__name__}"]
        problems = [f"{where}.{k}: missing" for k in documented if k not in actual]
        for k, v in documented.items():
            if k in actual:
                problems += shape_problems(v, actual[k], f"{where}.{k}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{where or 'answer'}: expected a list, got {type(actual).__name__}"]
        problems = []
        for d in documented if actual else []:  # an empty list is data, not a broken shape
            candidates = [shape_problems(d, a, f"{where}[]") for a in actual]
            if all(candidates):
                problems += min(candidates, key=len)
        return problems
    if isinstance(documented, bool):
        fits = isinstance(actual, bool)
    elif isinstance(documented, (int, float)):
        fits = isinstance(actual, (int, float)) and not isinstance(actual, bool)
    else:
        fits = not isinstance(documented, str) or isinstance(actual, str)
    if not fits:
        return [f"{where}: expected {type(documented).__name__}, got {actual!r}"]
    return []


def text_pattern(expected: str) -> re.Pattern:
    parts = re.split(r"(…|\.\.\.|\d[\d,.]*)", expected)
    regex = "".join(".*" if p in ("…", "...") else r"\d[\d,.]*" if p and p[0].isdigit() else re.escape(p)
                    for p in parts)
    return re.compile(regex)


def check_answer(cmd: Command, stdout: str, stderr: str) -> list[str]:
    problems = []
    for expected in cmd.expected:
        shape = _json_shape(expected)
        if shape is not None:
            try:
                actual = json.loads(stdout)
            except ValueError:
                problems.append(f"documented JSON, got: {stdout[:300]!r} {stderr[-300:]!r}")
                continue
            problems += shape_problems(shape, actual)
            if isinstance(shape, dict) and "code" in shape and isinstance(actual, dict) \
                    and actual.get("code") != shape["code"]:
                problems.append(f"code {actual.get('code')!r}, documented {shape['code']!r}")
        else:
            lines = (stdout + "\n" + stderr).splitlines()
            if not any(text_pattern(expected).search(line) for line in lines):
                problems.append(f"no line like {expected!r} in: {(stdout + stderr)[-600:]!r}")
    return problems


# -- what a reader has, and the test stands in for -------------------------------------------------------------------

@dataclass
class Demo:
    database_url: str
    psql_uri: str  # the demo database as the `psql:` line of `make run` names it
    app_url: str
    reference_url: str
    pacs_url: str
    study_uid: str
    series_uid: str
    sha256: str
    workdir: Path
    env: dict[str, str]

    def substitutions(self) -> list[tuple[str, str]]:
        app, ref = self.app_url.removeprefix("http://"), self.reference_url.removeprefix("http://")
        return [
            ("postgresql:///dermlabel?host=/path/to/.data/run&port=54320", self.psql_uri),
            ("http://pacs.example.org:8042/dicom-web", self.pacs_url),
            ("localhost:8000", app), ("127.0.0.1:8000", app), ("127.0.0.1:8001", ref),
            ("<study UID>", self.study_uid), ("<series UID>", self.series_uid), ("<sha256>", self.sha256),
            (".venv/bin/python", sys.executable),
        ]

    def substitute(self, text: str) -> str:
        for placeholder, value in self.substitutions():
            text = text.replace(placeholder, value)
        return text


def _jpeg(png: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()


def _approve_some(app_url: str, n: int) -> None:
    """A few demo items annotated (Melanoma, colours, a lesion outline) and approved, for the exports to have data."""
    with httpx.Client(base_url=app_url, timeout=30) as c:
        def login(email):
            r = c.post("/auth/login", json={"email": email, "password": DEMO_PASSWORD})
            return {"authorization": f"Bearer {r.json()['token']}"}
        ann, rev = login("ann3@dermlabel.test"), login("rev2@dermlabel.test")
        mel = next(n for n in c.get("/rpc/search_taxonomy", params={"project_id": 1, "q": "melanoma"},
                                    headers=ann).json() if n["code"] == "MEL")
        for _ in range(n):
            item = c.post("/rpc/next_item", json={"project_id": 1}, headers=ann).json()["item"]
            content = {"class": mel["id"], "descriptors": {"colours": ["dark_brown"]},
                       "regions": [{"type": "polygon", "label": "lesion",
                                    "points": [[300, 250], [650, 280], [600, 560], [320, 520]]}]}
            r = c.post("/rpc/submit_annotation", json={"item_id": item["id"], "content": content}, headers=ann)
            assert r.status_code == 200, r.text
            got = c.post("/rpc/next_review", json={"project_id": 1}, headers=rev).json()["item"]
            assert c.post("/rpc/approve", json={"item_id": got["id"]}, headers=rev).status_code == 200


@pytest.fixture(scope="module")
def demo(database_url):
    from dicom_files import Orthanc, vl_photograph

    name = f"docs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"DROP ROLE IF EXISTS {ANALYST_LOGIN}")
    db_url = url_for(name)
    params = conninfo_to_dict(database_url)
    psql_uri = f"postgresql:///{name}?host={params['host']}&port={params.get('port', 5432)}"
    work = Path(tempfile.mkdtemp(prefix="dermlabel-docs-"))
    images = work / "images"
    started: list = []
    try:
        env = {"DATABASE_URL": db_url, "DL_IMAGE_DIR": str(images)}
        for command in ("migrate", "seed"):
            out = run_cli(command, env=env)
            assert out.returncode == 0, out.stderr
        ref_url, ref = start_reference()
        started.append(lambda: stop(ref))
        app = start_app(db_url, {**env, "DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "off", "DL_RATE_RPC": "off",
                                 "DL_METRICS_REFRESH_SECONDS": "0", "DL_AI_REFERENCE_URL": ref_url})
        started.append(lambda: stop_app(app))
        pacs = Orthanc()
        started.append(pacs.stop)
        in_pacs = vl_photograph()
        pacs.store(in_pacs)
        held = pydicom.dcmread(io.BytesIO(in_pacs))
        _approve_some(app.url, 3)
        with psycopg.connect(db_url, autocommit=True) as conn:  # as the app's scheduler would have by now
            conn.execute("SELECT metrics.refresh_all('docs')")
        # the files a reader has beside them: a lesion photograph, a partner's case, a DICOM photograph, and label
        # records made in another tool (the demo's images, by SHA-256)
        reader = work / "reader"
        reader.mkdir()
        (reader / "lesion.jpg").write_bytes(_jpeg(round_lesion(600, 110)[0]))
        (reader / "case.jpg").write_bytes(_jpeg(round_lesion(500, 70)[0]))
        (reader / "photo.dcm").write_bytes(vl_photograph((170, 110, 95)))
        with psycopg.connect(db_url) as conn:
            shas = [r[0] for r in conn.execute("SELECT sha256 FROM core.image WHERE project_id = 1 ORDER BY id "
                                               "LIMIT 3")]
        (reader / "labels.jsonl").write_text("".join(json.dumps({"sha256": s, "class": c}) + "\n"
                                                     for s, c in zip(shas, ["MEL", "NV", "BKL"])))
        shell_env = {**os.environ, **env, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "PGCONNECT_TIMEOUT": "10"}
        yield Demo(db_url, psql_uri, app.url, ref_url, pacs.dicomweb, str(held.StudyInstanceUID),
                   str(held.SeriesInstanceUID), shas[0], reader, shell_env)
    finally:
        for stopper in reversed(started):
            stopper()
        with psycopg.connect(url_for("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {ANALYST_LOGIN}")
        shutil.rmtree(work, ignore_errors=True)


def _analyst_login(demo: Demo, present: bool) -> None:
    """docs/dbas.md makes the analyst's login, docs/analysts.md uses it: each page runs on its own."""
    with psycopg.connect(demo.database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ANALYST_LOGIN,)).fetchone()
        if present and not exists:
            conn.execute("SELECT auth.create_analyst_login('analyst@dermlabel.test', %s, 'a long secret password')",
                         (ANALYST_LOGIN,))
        elif exists and not present:
            conn.execute("DELETE FROM auth.db_login WHERE rolname = %s", (ANALYST_LOGIN,))
            conn.execute(f"REVOKE CONNECT ON DATABASE {conninfo_to_dict(demo.database_url)['dbname']} "
                         f"FROM {ANALYST_LOGIN}")
            conn.execute(f"DROP ROLE {ANALYST_LOGIN}")


BEFORE = {"docs/dbas.md": lambda d: _analyst_login(d, present=False),
          "docs/analysts.md": lambda d: _analyst_login(d, present=True)}


# -- running them ----------------------------------------------------------------------------------------------------

PREAMBLE = """set -o pipefail
# a documented command that does not work must fail the test: curl's answer must be 2xx unless an error is documented
curl() { if [[ -n ${DOCS_EXPECT_ERROR:-} ]]; then command curl "$@"; else command curl --fail-with-body "$@"; fi; }
"""


def run_shell(demo: Demo, cmds: list[Command]) -> list[tuple[int, str, str]]:
    out = Path(tempfile.mkdtemp(prefix="cmds-", dir=demo.workdir.parent))
    script = [PREAMBLE]
    for i, cmd in enumerate(cmds):
        script.append(f"DOCS_EXPECT_ERROR={'1' if cmd.expects_error else ''}\n"
                      f"{{ {demo.substitute(cmd.text)}\n}} >{out}/{i}.out 2>{out}/{i}.err </dev/null\n"
                      f"echo $? >{out}/{i}.rc\n")
    proc = subprocess.run(["bash", "-c", "".join(script)], cwd=demo.workdir, env=demo.env, capture_output=True,
                          text=True, timeout=600)
    results = []
    for i in range(len(cmds)):
        rc = out / f"{i}.rc"
        assert rc.exists(), f"the shell stopped before command {i}: {proc.stderr[-2000:]}"
        results.append((int(rc.read_text()), (out / f"{i}.out").read_text(errors="replace"),
                        (out / f"{i}.err").read_text(errors="replace")))
    return results


def run_sql(demo: Demo, block: Block) -> list[str]:
    proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", demo.psql_uri + "&user=postgres"],
                          input=block.text, env=demo.env, cwd=demo.workdir, capture_output=True, text=True,
                          timeout=120)
    return [] if proc.returncode == 0 else [f"{block.page}:{block.line}: psql failed: {proc.stderr[-1500:]}"]


def run_python(block: Block) -> list[str]:
    from app.ops.webhooks import signature

    namespace: dict = {}
    exec(compile(block.text, f"{block.page}:{block.line}", "exec"), namespace)
    problems = []
    if "genuine" in namespace:
        body, secret = b'{"event": "ping", "delivery_id": 1}', "s3cret-of-the-webhook"
        headers = {"X-DermLabel-Signature": signature(secret, int(time.time()), body)}
        if not namespace["genuine"](headers, body, secret):
            problems.append(f"{block.page}:{block.line}: genuine() refuses a delivery the worker signed")
        if namespace["genuine"](headers, body + b" ", secret):
            problems.append(f"{block.page}:{block.line}: genuine() accepts a tampered body")
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_the_commands_of_a_page_work(demo, page):
    blocks = blocks_marked_tested(page)
    if not blocks:
        pytest.skip(f"{page} has no tested blocks")
    if page in BEFORE:
        BEFORE[page](demo)
    problems: list[str] = []
    shell: list[Command] = []
    for block in blocks:
        if block.lang == "sh":
            shell += commands(block)
        elif block.lang == "sql":
            problems += run_sql(demo, block)
        elif block.lang == "python":
            problems += run_python(block)
        else:
            problems.append(f"{page}:{block.line}: no way to test a {block.lang} block")
    for cmd, (rc, stdout, stderr) in zip(shell, run_shell(demo, shell) if shell else []):
        where = f"{page}:{cmd.line}: {cmd.text.splitlines()[0][:100]}"
        if rc != 0 and not cmd.expects_error:
            problems.append(f"{where}: exit {rc}: {(stdout + stderr)[-800:]}")
            continue
        problems += [f"{where}: {p}" for p in check_answer(cmd, stdout, stderr)]
    assert not problems, "\n".join(problems)


def test_every_page_that_promises_tested_commands_has_some():
    """Each audience page says its commands are tested: it must have tested blocks (the README: its health
    check)."""
    for page in PAGES:
        assert blocks_marked_tested(page), f"{page} has no <!-- tested --> block"


# -- what the pages name exists --------------------------------------------------------------------------------------

SCHEMAS = ("api", "core", "auth", "audit", "metrics", "analytics", "ops", "ai")


def _prose(page: str) -> str:
    return (ROOT / page).read_text()


@pytest.fixture(scope="module")
def catalog(database_url):
    with psycopg.connect(database_url) as conn:
        functions = {}
        for schema, name, args in conn.execute(
                "SELECT n.nspname, p.proname, coalesce(p.proargnames, '{}') FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY(%s)", (list(SCHEMAS),)):
            functions.setdefault((schema, name), set()).update(args)
        objects = {(s, n) for s, n in conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY(%s) UNION SELECT n.nspname, t.typname FROM pg_type t "
            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ANY(%s)", (list(SCHEMAS), list(SCHEMAS)))}
        grants = {}
        for role, name in conn.execute(
                "SELECT r.rolname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, "
                "aclexplode(p.proacl) a JOIN pg_roles r ON r.oid = a.grantee "
                "WHERE n.nspname = 'api' AND a.privilege_type = 'EXECUTE'"):
            grants.setdefault(role, set()).add(name)
        views = {}
        for view, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'analytics'"):
            views.setdefault(view, set()).add(column)
    return {"functions": functions, "objects": objects, "grants": grants, "views": views}


@pytest.mark.parametrize("page", ALL_PAGES)
def test_the_functions_and_objects_a_page_names_exist(catalog, page):
    text = _prose(page)
    functions, objects = catalog["functions"], catalog["objects"]
    problems = []
    for name in set(re.findall(r"/rpc/([a-z_]+)", text)):
        if ("api", name) not in functions:
            problems.append(f"/rpc/{name}: no such api function")
    # POST /rpc/fn {"arg", "arg": …}: the names are its arguments
    for name, body in re.findall(r"/rpc/([a-z_]+) (\{[^}]*\})", text):
        for arg in re.findall(r'"([a-z_]+)"(?=\s*[,:}])', body):
            if ("api", name) in functions and arg not in functions[("api", name)]:
                problems.append(f"/rpc/{name}: no argument {arg}")
    for schema, name in set(re.findall(r"(?<![\w/\[(.-])(" + "|".join(SCHEMAS) + r")\.([a-z_][a-z0-9_]*)\b(?![.*])",
                                       text)):
        if name == "md":  # a page's name (api.md), not an object
            continue
        if (schema, name) not in functions and (schema, name) not in objects:
            problems.append(f"{schema}.{name}: not in the database")
    # api.fn(arg, arg => …): bare names are its arguments
    for name, args in re.findall(r"\bapi\.([a-z_]+)\(([^)]*)\)", text):
        for arg in args.split(","):
            arg = re.split(r"\s*(=>|\bDEFAULT\b)", arg.strip())[0]
            if re.fullmatch(r"[a-z_]+", arg) and ("api", name) in functions and arg not in functions[("api", name)]:
                problems.append(f"api.{name}({arg}): no such argument")
    assert not problems, "\n".join(sorted(problems))


def _app_routes() -> set[tuple[str, str]]:
    from app import config
    from app.server.main import create_app

    routes = set()
    for route in create_app(config.load({})).routes:
        path = re.sub(r"\{[^}]+\}", "{}", route.path)
        for handler in route.route_handlers:
            routes |= {(m, path) for m in handler.http_methods}
    return routes


@pytest.mark.parametrize("page", ALL_PAGES)
def test_the_routes_a_page_names_exist(page):
    routes = _app_routes()
    problems = []
    for method, path in set(re.findall(r"\b(GET|POST) (/[A-Za-z0-9_./{}<>-]*)", _prose(page))):
        path = re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path.rstrip("."))
        if path.startswith("/rpc/") or path.startswith("/v1/"):  # functions (checked above), the AI services' own
            continue
        if (method, path) not in routes:
            problems.append(f"{method} {path}")
    assert not problems, f"{page} names routes the app does not have: {problems}"


def _table(page: str, heading: str) -> list[list[str]]:
    text = _prose(page)
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows[1:]  # without the header


def test_the_access_table_matches_the_grants(catalog):
    """docs/api.md's 'Who may call what': every function named is granted to that kind of caller."""
    role = {"annotator (of the project)": "dl_annotator", "reviewer (of the project)": "dl_reviewer",
            "project admin": "dl_admin", "organization admin": "dl_admin", "operator": "dl_admin",
            "anyone signed in": "dl_member", "anonymous": "dl_anon"}
    rows = _table("docs/api.md", "## Who may call what")
    assert [r[0] for r in rows] == list(role)
    problems = []
    for who, functions in rows:
        for name in re.findall(r"`([a-z_]+)`", functions):
            if name not in catalog["grants"].get(role[who], set()):
                problems.append(f"{who}: {name} is not granted to {role[who]}")
    assert not problems, "\n".join(problems)


def test_the_analysts_page_lists_every_column_of_every_view(catalog):
    rows = _table("docs/analysts.md", "## The views")
    documented = {re.fullmatch(r"`([a-z_]+)`", r[0]).group(1): r for r in rows}
    assert set(documented) == set(catalog["views"]), "views documented vs analytics views"
    problems = []
    for view, (_, keys, columns) in documented.items():
        named = set(re.findall(r"`([a-z_]+)`", keys)) | set(re.findall(r"`([a-z_]+)`", columns))
        if missing := catalog["views"][view] - named:
            problems.append(f"{view}: columns not documented: {sorted(missing)}")
        if stale := set(re.findall(r"`([a-z_]+)`", columns)) - catalog["views"][view]:
            problems.append(f"{view}: documented columns it does not have: {sorted(stale)}")
    assert not problems, "\n".join(problems)


# -- the harness itself ----------------------------------------------------------------------------------------------

def test_documented_answers_are_read_as_meant():
    shape = _json_shape('{"files": [{"id": 49, "duplicate": false, …}], "n": "…", …}')
    assert shape == {"files": [{"id": 49, "duplicate": False}], "n": "…"}
    assert _json_shape("[…]") == [] and _json_shape('[{"a": 1}, …]') == [{"a": 1}]
    assert shape_problems(shape, {"files": [{"id": 1, "duplicate": True, "x": 2}], "n": "y", "z": 1}) == []
    assert shape_problems(shape, {"files": [{"id": "1", "duplicate": True}], "n": "y"}) == \
        [".files[].id: expected int, got '1'"]
    assert shape_problems({"a": {"b": 1}}, {"a": {}}) == [".a.b: missing"]
    assert text_pattern("exported 3 items of 3 images to ds.csv (…)").search(
        "exported 12 items of 10 images to ds.csv (manifest: ds.csv.manifest.json)")
    assert not text_pattern("validate: all applied").search("validate failed")
    assert _is_error('{"code": "P0002", "message": "…", …}') and _is_error("error: DL_X must …")
    block = Block("x.md", "sh", 1, "# a comment\nA=$(echo 'it''s' \\\n  | cat)\n# → it…\necho '{\n}'\n")
    cmds = commands(block)
    assert [c.text for c in cmds] == ["A=$(echo 'it''s' \\\n  | cat)", "echo '{\n}'"]
    assert cmds[0].expected == ["it…"] and cmds[0].line == 2
