"""JSON from clients, decoded strictly: an object names each key once (a duplicate is refused, never silently
resolved to its last value as JSON parsers and jsonb do) and nesting is bounded.

msgspec decodes. Duplicates are then ruled out by counting, not by parsing again: every member of an object needs a
':' after its key in the text, so when the decoded objects hold as many keys as the text has colons (or, tighter,
as many as it has '"' + blanks + ':'), no key was dropped. Only a body where that count cannot decide (a string
holding '":') is parsed a second time, by json with a hook that names the duplicated key."""
from __future__ import annotations

import json
import re
from typing import Any

import msgspec

# No annotation needs more; PostgreSQL's jsonb and the JSON encoders recurse, so a bomb is stopped here.
MAX_DEPTH = 64

# what ends every key: its closing quote, optional blanks, the colon (also matches \": inside a string: an upper
# bound on the number of members, which is all the count needs)
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


class Refused(ValueError):
    """A JSON text the app does not accept: `message` says why, `details` adds the parser's words or the key;
    `key` is the key named twice, when that was the reason."""

    def __init__(self, message: str, details: object = None, hint: str | None = None, key: str | None = None):
        super().__init__(message)
        self.message, self.details, self.hint, self.key = message, details, hint, key


class _Duplicate(Exception):
    def __init__(self, key: str):
        self.key = key


def decode(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON text; Refused when it is not JSON, nests deeper than max_depth or repeats a key in an
    object (at any depth)."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Refused("not valid JSON", details=str(exc)) from None
    except RecursionError:  # the decoder's own guard against a nesting bomb
        raise Refused(f"JSON nested deeper than {max_depth} levels") from None
    keys = count_keys(value, max_depth)
    if raw.count(b":") != keys and len(_KEY_END.findall(raw)) != keys:
        _find_duplicate(raw)
    return value


def count_keys(value: Any, max_depth: int = MAX_DEPTH) -> int:
    """How many keys the objects in value hold together; Refused when lists/objects nest more than max_depth levels.
    Level by level, without recursion: a bomb cannot exhaust the stack here."""
    keys = 0
    level = [value] if type(value) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise Refused(f"JSON nested deeper than {max_depth} levels")
        children: list = []
        for v in level:
            if type(v) is dict:
                keys += len(v)
                children += v.values()
            else:
                children += v
        level = [c for c in children if type(c) in (dict, list)]
    return keys


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return out


def _find_duplicate(raw: bytes) -> None:
    """The slow, exact check: parse again, objects built from their pairs in order; the first repeated key is named."""
    try:
        json.loads(raw, object_pairs_hook=_unique)
    except _Duplicate as dup:
        shown = dup.key if len(dup.key) <= 100 else dup.key[:100] + "…"
        raise Refused(f'duplicate key "{shown}" in a JSON object', details={"key": shown},
                      hint="name each key once per object", key=shown) from None
    except (ValueError, RecursionError) as exc:  # what msgspec took and json does not: refuse it the same way
        raise Refused("not valid JSON", details=str(exc)[:200]) from None
