"""Flyway's checksum: CRC32 over the UTF-8 bytes of each line, lines read as Java's BufferedReader.readLine does."""
from __future__ import annotations

import re
import zlib

# readLine ends a line at "\r\n", "\r" or "\n" and nothing else (unlike str.splitlines, which also splits on
# \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029).
_TERMINATOR = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


def java_lines(text: str) -> list[str]:
    """The lines readLine() would return: a trailing terminator does not start another (empty) line."""
    if text == "":
        return []
    lines = _TERMINATOR.split(text)
    if text.endswith(("\n", "\r")):
        lines.pop()  # the split after a final terminator yields one empty string readLine never returns
    return lines


def decode(raw: bytes) -> str:
    """Decode as Java's InputStreamReader with UTF-8 does: malformed bytes become U+FFFD."""
    return raw.decode("utf-8", errors="replace")


def checksum(text: str) -> int:
    """Flyway's checksum of a migration's text, as the signed 32-bit integer it stores."""
    crc = 0
    for i, line in enumerate(java_lines(text)):
        if i == 0 and line.startswith(_BOM):
            line = line[1:]
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= (1 << 31) else crc
