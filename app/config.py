"""Settings read once from the environment, with defaults for the embedded cluster under .data/."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    pg_port: int
    database_url: str
    embedded: bool  # no DATABASE_URL given: `run` manages its own cluster under data_dir
    app_db_user: str
    app_db_password: str | None
    http_host: str
    http_port: int
    flyway_conf: Path

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def pg_data(self) -> Path:
        return self.data_dir / "pg"


def embedded_url(socket_dir: Path, port: int, dbname: str = "dermlabel", user: str = "postgres") -> str:
    return f"postgresql:///{dbname}?host={quote(str(socket_dir), safe='/')}&port={port}&user={user}"


def load() -> Settings:
    env = os.environ
    data_dir = Path(env.get("DL_DATA_DIR", ROOT / ".data")).resolve()
    pg_port = int(env.get("DL_PG_PORT", "54320"))
    url = env.get("DATABASE_URL")
    return Settings(
        data_dir=data_dir,
        pg_port=pg_port,
        database_url=url or embedded_url(data_dir / "run", pg_port),
        embedded=not url,
        app_db_user=env.get("DL_APP_DB_USER", "dl_authenticator"),
        app_db_password=env.get("DL_APP_DB_PASSWORD") or None,
        http_host=env.get("DL_HOST", "127.0.0.1"),
        http_port=int(env.get("DL_PORT", "8000")),
        flyway_conf=Path(env.get("DL_FLYWAY_CONF", ROOT / "flyway.conf")),
    )
