"""The repository explains itself: nothing in it points to documents outside it, the architecture page the
README, the error mapping and the state-machine test name is there, and every relative link of the README and the
docs pages leads to a file of the repository (and each `#anchor` to a heading of that file)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

AUDIENCE_PAGES = ["docs/operators.md", "docs/dbas.md", "docs/analysts.md", "docs/ml-engineers.md", "docs/api.md"]


def _markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_nothing_points_outside_the_repository():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    outside = []
    for name in files:
        path = ROOT / name
        if path.suffix not in (".py", ".sql", ".md", ".js", ".html", ".sh", ".yml", ".toml") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if "../shared/" in text or "DESIGN.md" in text:
            if name != "tests/test_docs_links.py":
                outside.append(name)
    assert outside == []
    assert (ROOT / "docs" / "architecture.md").is_file()


def _outside_fences(text: str) -> str:
    """The page without its fenced code blocks: a `# comment` in a shell block is no heading, a [x](y) in code
    no link."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: links and formatting dropped, lower case, punctuation removed, spaces to
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _outside_fences(path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The targets of [text](target) and ![alt](target), code spans left out."""
    text = re.sub(r"`[^`\n]*`", "", _outside_fences(path.read_text()))
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_the_slugs_are_githubs():
    assert slug("`make run`: the embedded installation") == "make-run-the-embedded-installation"
    assert slug("Who viewed what (access audit)") == "who-viewed-what-access-audit"
    assert slug("10. Configuration") == "10-configuration"
    assert slug("Cohen's and Fleiss' kappa") == "cohens-and-fleiss-kappa"
    assert slug("Erasure, consent and retention") == "erasure-consent-and-retention"


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    problems = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not a file of ours
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if ROOT.resolve() not in [dest, *dest.parents]:
            problems.append(f"{target}: outside the repository")
            continue
        if not dest.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor:
            if dest.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(dest):
                problems.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT.resolve())}")
    assert not problems, f"{page.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_readme_links_to_every_audience_page():
    readme_links = {t.partition("#")[0] for t in links(ROOT / "README.md")}
    for page in [*AUDIENCE_PAGES, "docs/web-ui.md", "docs/architecture.md"]:
        assert page in readme_links, f"README.md does not link to {page}"


def test_the_readme_prints_what_make_run_applies():
    """The README's `make run` block names the migrations a fresh run applies and the schema version it reaches."""
    versioned = sorted(int(re.match(r"V(\d+)__", p.name).group(1)) for p in (ROOT / "db" / "migrations").glob("V*.sql"))
    repeatable = list((ROOT / "db" / "functions").glob("R__*.sql"))
    line = f"applied {len(versioned) + len(repeatable)} migration(s); schema version {versioned[-1]}"
    assert line in (ROOT / "README.md").read_text()
