"""The promises the README makes about files a newcomer and CI rely on."""
from conftest import ROOT


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_every_api_function_has_a_comment():
    import re
    text = "\n".join(p.read_text() for p in (ROOT / "db").rglob("*.sql"))
    defined = set(re.findall(r"create (?:or replace )?function\s+api\.(\w+)", text, re.I))
    commented = set(re.findall(r"comment on function\s+api\.(\w+)", text, re.I))
    assert defined and defined <= commented, defined - commented
