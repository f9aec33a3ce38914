"""Our checksum equals java.util.zip.CRC32 over Java's readLine lines (vectors printed by tools/flyway-checksum)."""
from pathlib import Path

import pytest

from app.migrate.checksum import checksum, decode, java_lines

DATA = Path(__file__).parent / "data" / "checksum"
VECTORS = [line.split("\t") for line in (DATA / "vectors.tsv").read_text().splitlines() if line]


def test_vectors_cover_the_edge_cases():
    names = {name for name, _ in VECTORS}
    assert {"crlf.txt", "cr.txt", "bom.txt", "empty.txt", "not_terminators.txt", "invalid_utf8.txt"} <= names
    assert len(VECTORS) == len(list(DATA.glob("*.txt")))


@pytest.mark.parametrize("name,expected", VECTORS, ids=[v[0] for v in VECTORS])
def test_checksum_matches_java(name: str, expected: str):
    assert checksum(decode((DATA / name).read_bytes())) == int(expected)


def test_line_splitting_is_javas_not_pythons():
    assert java_lines("a\x0bb\u2028c\x85d") == ["a\x0bb\u2028c\x85d"]
    assert java_lines("a\r\n\nb\r\r\nc\n\r") == ["a", "", "b", "", "c", ""]
    assert java_lines("x\n") == ["x"]
    assert java_lines("") == []


def test_line_endings_do_not_change_the_checksum_but_content_does():
    assert checksum("a\nb\n") == checksum("a\r\nb") == checksum("a\rb\r")
    # Flyway feeds the lines to one CRC without separators, so where the breaks fall does not count either
    assert checksum("a\nb") == checksum("ab")
    assert checksum("a\nb") != checksum("a\nc") != checksum("a\nb ")
