"""Find migrations in the configured locations and name them as Flyway does."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path

from .checksum import checksum, decode

_VERSIONED = re.compile(r"^V(?P<version>.+?)__(?P<desc>.*)\.sql$")
_REPEATABLE = re.compile(r"^R__(?P<desc>.*)\.sql$")
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


class MigrationError(Exception):
    """A problem the DBA must act on; the message names the file."""


@total_ordering
class Version:
    """A Flyway version: parts split on '.', compared numerically, trailing zero parts ignored."""

    def __init__(self, text: str):
        self.text = text
        try:
            parts = [int(p) for p in text.split(".")]
        except ValueError:
            raise MigrationError(f"invalid version {text!r}: parts must be numbers") from None
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        self.parts = tuple(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.parts == other.parts

    def __lt__(self, other: "Version") -> bool:
        return self.parts < other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Migration:
    path: Path
    script: str  # the file name relative to its location, as Flyway records it
    version: Version | None  # None for a repeatable
    description: str
    sql: str  # after placeholder replacement: what is executed
    checksum: int

    @property
    def repeatable(self) -> bool:
        return self.version is None


@dataclass(frozen=True)
class Config:
    locations: list[Path]
    placeholders: dict[str, str]
    placeholder_replacement: bool = True
    table: str = "flyway_schema_history"
    schema: str = "public"


def load_config(conf: Path) -> Config:
    """Read the subset of flyway.conf we honour: locations, placeholders, placeholderReplacement, table, schemas."""
    props: dict[str, str] = {}
    for line in conf.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    base = conf.resolve().parent
    locations = []
    for loc in props.get("flyway.locations", "filesystem:db/migration").split(","):
        loc = loc.strip()
        if not loc.startswith("filesystem:"):
            raise MigrationError(f"{conf.name}: only filesystem: locations are supported, not {loc!r}")
        locations.append((base / loc[len("filesystem:"):]).resolve())
    placeholders = {k[len("flyway.placeholders."):]: v for k, v in props.items() if k.startswith("flyway.placeholders.")}
    schema = props.get("flyway.schemas", props.get("flyway.defaultSchema", "public")).split(",")[0].strip()
    return Config(
        locations=locations,
        placeholders=placeholders,
        placeholder_replacement=props.get("flyway.placeholderReplacement", "true").lower() == "true",
        table=props.get("flyway.table", "flyway_schema_history"),
        schema=schema,
    )


def replace_placeholders(sql: str, values: dict[str, str], script: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise MigrationError(f"{script}: no value provided for placeholder ${{{name}}}")
        return values[name]

    return _PLACEHOLDER.sub(sub, sql)


def resolve(config: Config, builtins: dict[str, str] | None = None) -> list[Migration]:
    """All migrations on disk: versioned in version order, then repeatables by description."""
    versioned: list[Migration] = []
    repeatable: list[Migration] = []
    seen_versions: dict[Version, str] = {}
    for location in config.locations:
        if not location.is_dir():
            raise MigrationError(f"location {location} does not exist")
        for path in sorted(location.rglob("*.sql")):
            name = path.name
            if m := _VERSIONED.match(name):
                version: Version | None = Version(m.group("version").replace("_", "."))
                desc = m.group("desc")
            elif m := _REPEATABLE.match(name):
                version, desc = None, m.group("desc")
            else:
                continue  # Flyway ignores files that match no prefix
            script = path.relative_to(location).as_posix()
            raw = decode(path.read_bytes())
            values = {**(builtins or {}), "flyway:filename": name, **config.placeholders}
            sql = replace_placeholders(raw, values, script) if config.placeholder_replacement else raw
            # Flyway checksums versioned migrations on their raw text, repeatables after replacement, so a
            # changed placeholder value re-applies the repeatables that use it.
            crc = checksum(raw if version is not None else sql)
            mig = Migration(path, script, version, desc.replace("_", " "), sql, crc)
            if version is None:
                repeatable.append(mig)
            else:
                if version in seen_versions:
                    raise MigrationError(f"found more than one migration with version {version}: "
                                         f"{seen_versions[version]}, {script}")
                seen_versions[version] = script
                versioned.append(mig)
    versioned.sort(key=lambda m: m.version)  # type: ignore[arg-type,return-value]
    repeatable.sort(key=lambda m: m.description)
    return versioned + repeatable
