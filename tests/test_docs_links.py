"""The repository explains itself: nothing in it points to documents outside it, and the architecture page the
README, the error mapping and the state-machine test name is there."""
from __future__ import annotations

import subprocess

from conftest import ROOT


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
