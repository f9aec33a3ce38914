"""Every setting DermLabel reads from the environment, in one typed object: grouped by concern, each setting with
its variable, type, default and description. load() reads and checks them all at start-up (a value the app cannot
use stops the command with an error naming the variable) and the object is passed to what needs it; no other
module reads the environment. An empty variable counts as unset. The README's configuration table is generated
from here (`python -m app settings`), and tests/test_settings.py keeps the two equal."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


class SettingsError(ValueError):
    """A setting the app cannot use; the message names its variable."""


# -- parsers: (variable, raw text) -> value, or SettingsError --------------------------------------------------

def text(name: str, raw: str) -> str:
    return raw


def path(name: str, raw: str) -> Path:
    return Path(raw)


def integer(low: int | None = None, high: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number{_range(low, high)} (got {raw!r})") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise SettingsError(f"{name} must be a whole number{_range(low, high)} (got {raw!r})")
        return value
    return parse


def number(low: float = 0) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not low <= value < math.inf:  # nan is not
            raise SettingsError(f"{name} must be a number of at least {low:g} (got {raw!r})")
        return value
    return parse


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    return f" of at least {low}" if low is not None else ""


def choice(*options: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in options:
            allowed = " or ".join(options) if len(options) == 2 else "one of " + ", ".join(options)
            raise SettingsError(f"{name} must be {allowed} (got {raw!r})")
        return raw
    return parse


def on_off(name: str, raw: str) -> bool:
    return choice("on", "off")(name, raw) == "on"


def true_false(name: str, raw: str) -> bool:
    return choice("true", "false")(name, raw.lower()) == "true"


_RATE = re.compile(r"^(\d+(?:\.\d+)?)(?:/(\d+(?:\.\d+)?)?)?$")


def rate(name: str, raw: str) -> str:
    """`<count>/<seconds>` (a count alone: per second) or `off`; kept as written, ratelimit.RateLimit reads it."""
    m = _RATE.match(raw)
    if raw != "off" and (not m or float(m.group(1)) <= 0 or float(m.group(2) or 1) <= 0):
        raise SettingsError(f"{name} must look like 30/60 (requests/seconds) or off (got {raw!r})")
    return raw


def secret(name: str, raw: str) -> str:
    if len(raw) < 32:
        raise SettingsError(f"{name} must be at least 32 characters")
    return raw


# -- declaring a setting -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Var:
    env: str
    parse: Callable[[str, str], Any]
    shown: str  # the default as the documentation says it
    doc: str


def setting(env: str, default: Any, doc: str, parse: Callable[[str, str], Any] = text, shown: str | None = None) -> Any:
    """A dataclass field read from the variable `env`: `parse` turns its text into the value, `default` when it is
    unset. A default of None is worked out by load() from other settings (or means "none"); `shown` says it."""
    return field(default=default, metadata={"var": Var(env, parse, _shown(default) if shown is None else shown, doc)})


def _shown(default: Any) -> str:
    if default is None or default == "":
        return ""
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float):
        return f"`{default:g}`"
    if isinstance(default, Path) and default.is_relative_to(ROOT):
        return f"`{default.relative_to(ROOT)}`"
    return f"`{default}`"


# -- the groups ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Database:
    """The database every command uses."""
    url: str = setting("DATABASE_URL", None, "libpq URI of the database, for every command (migrator, app, worker, "
                       "seed). When set, `make run` does not manage a cluster", shown="the embedded cluster's socket")
    app_db_user: str = setting("DL_APP_DB_USER", "dl_authenticator",
                               "the login role the app and the worker use (never a superuser)")
    app_db_password: str | None = setting("DL_APP_DB_PASSWORD", None, "its password, where the server asks for one")
    pool_size: int = setting("DL_POOL_SIZE", 16, "database connections of the app", integer(1))
    flyway_conf: Path = setting("DL_FLYWAY_CONF", ROOT / "flyway.conf", "the Flyway configuration the migrator reads",
                                path)
    embedded: bool = False  # no DATABASE_URL: `run` manages its own cluster under DL_DATA_DIR (url is then its socket)


@dataclass(frozen=True)
class Cluster:
    """The embedded PostgreSQL cluster (`make run`, the tests) and the app's local files."""
    data_dir: Path = setting("DL_DATA_DIR", ROOT / ".data", "where the embedded cluster, its socket and logs live (and "
                             "local images and the generated JWT secret)", path)
    pg_port: int = setting("DL_PG_PORT", 54320, "port of the embedded cluster (socket only; it does not listen on TCP)",
                           integer(1, 65535))
    pg_bin: Path | None = setting("DL_PG_BIN", None, "directory holding `initdb` and `pg_ctl`", path,
                                  shown="found via `pg_config` or `/usr/lib/postgresql/*/bin`")
    pg_options: str = setting("DL_PG_OPTIONS", "", "extra `postgres` options for the embedded cluster, e.g. "
                              "`-c shared_buffers=1GB`")

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def pg_data(self) -> Path:
        return self.data_dir / "pg"


@dataclass(frozen=True)
class Server:
    """The HTTP server."""
    host: str = setting("DL_HOST", "127.0.0.1", "the address the app listens on")
    port: int = setting("DL_PORT", 8000, "the port the app listens on", integer(1, 65535))
    log_format: str | None = setting("DL_LOG_FORMAT", None, "`json` (one object per line, with `request_id` on access "
                                     "lines) or `text`", choice("json", "text"),
                                     shown="`json` (`text` under `make run`)")


@dataclass(frozen=True)
class Limits:
    """What a request may bring, and how often."""
    max_header_kb: int = setting("DL_MAX_HEADER_KB", 32, "largest request head (all its headers); larger is 431",
                                 integer(1))
    max_upload_mb: int = setting("DL_MAX_UPLOAD_MB", 40, "largest accepted image file", integer(1))
    max_request_mb: int = setting("DL_MAX_REQUEST_MB", 1024, "largest upload request (many files at once), and "
                                  "largest DICOMweb series retrieved from a PACS", integer(1))
    rate_login: str = setting("DL_RATE_LOGIN", "20/60", "sign-in attempts per address and per email: "
                              "`<count>/<seconds>` or `off`", rate)
    rate_rpc: str = setting("DL_RATE_RPC", "1200/60", "calls per person, API key or (anonymous) address: "
                            "`<count>/<seconds>` or `off`. Counted in PostgreSQL (`auth.rate_bucket`), so a limit "
                            "holds across all app processes; refused requests count too", rate)


@dataclass(frozen=True)
class Auth:
    """Tokens and cookies."""
    jwt_secret: str | None = setting("DL_JWT_SECRET", None, "HS256 signing secret for tokens (at least 32 "
                                     "characters)", secret, shown="generated once into `.data/jwt_secret`")
    jwt_ttl_seconds: int = setting("DL_JWT_TTL_SECONDS", 28800, "token and session lifetime", integer(1),
                                   shown="`28800` (8 h)")
    secure_cookies: bool = setting("DL_SECURE_COOKIES", False, "mark cookies `Secure` (set `true` behind HTTPS)",
                                   true_false)


@dataclass(frozen=True)
class Oidc:
    """OIDC sign-in (Google or any issuer with a discovery document): on when issuer, client id and redirect URL are
    set; a verified email is mapped to an existing active user."""
    issuer: str = setting("DL_OIDC_ISSUER", "", "OIDC sign-in: the issuer (its discovery document is "
                          "`<issuer>/.well-known/openid-configuration`); `/auth/oidc/login` starts a sign-in")
    client_id: str = setting("DL_OIDC_CLIENT_ID", "", "OIDC sign-in: the client id")
    client_secret: str = setting("DL_OIDC_CLIENT_SECRET", "", "OIDC sign-in: the client secret (PKCE is used "
                                 "either way)")
    redirect_url: str = setting("DL_OIDC_REDIRECT_URL", "", "OIDC sign-in: the redirect URL, `…/auth/oidc/callback`")

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id and self.redirect_url)


@dataclass(frozen=True)
class Storage:
    """Where image bytes live."""
    kind: str = setting("DL_STORAGE", "local", "`local` (files under `DL_IMAGE_DIR`) or `s3`", choice("local", "s3"))
    image_dir: Path = setting("DL_IMAGE_DIR", None, "the folder of `local` storage", path, shown="`.data/images`")
    s3_bucket: str = setting("DL_S3_BUCKET", "", "the S3 bucket (needed with `s3`; credentials from the usual "
                             "`AWS_*` variables)")
    s3_prefix: str = setting("DL_S3_PREFIX", "", "a key prefix inside the bucket")
    s3_endpoint_url: str | None = setting("DL_S3_ENDPOINT_URL", None, "the S3 endpoint, for MinIO")


@dataclass(frozen=True)
class Metrics:
    """The metrics views and /metrics."""
    refresh_seconds: float = setting("DL_METRICS_REFRESH_SECONDS", 60.0, "how often the app refreshes the metrics "
                                     "views and applies retention (`0`: never)", number(0))
    token: str = setting("DL_METRICS_TOKEN", "", "when set, `/metrics` answers only `Authorization: Bearer "
                         "<token>`; unset, only clients on the app's machine")


@dataclass(frozen=True)
class Ai:
    """The reference AI service and the worker as processes."""
    reference: bool = setting("DL_AI_REFERENCE", True, "`off`: `make run` does not start the reference service",
                              on_off, shown="`on`")
    worker: bool = setting("DL_AI_WORKER", True, "`off`: `make run` does not start the worker (nor webhook "
                           "deliveries and purges)", on_off, shown="`on`")
    host: str = setting("DL_AI_HOST", "127.0.0.1", "the address the reference AI service listens on")
    port: int = setting("DL_AI_PORT", 8001, "the port the reference AI service listens on", integer(1, 65535))
    reference_url: str = setting("DL_AI_REFERENCE_URL", None, "the reference service, for the stages' default URLs",
                                 shown="`http://DL_AI_HOST:DL_AI_PORT`")


@dataclass(frozen=True)
class AiStages:
    """What each stage of the AI pipeline calls (crop → classify → recommend, and segment beside classify)."""
    crop: str = setting("DL_AI_CROP", "http", "crop stage: `http` or `off`", choice("http", "off"))
    crop_url: str = setting("DL_AI_CROP_URL", None, "crop service", shown="`…/v1/crop` of `DL_AI_REFERENCE_URL`")
    crop_timeout: float = setting("DL_AI_CROP_TIMEOUT", 30.0, "crop call timeout, seconds", number(0))
    segment: str = setting("DL_AI_SEGMENT", "http", "the segment service, for the worker's segment stage and the "
                           "app's click-to-segment: `http` or `off` (then clicks answer 503)", choice("http", "off"))
    segment_url: str = setting("DL_AI_SEGMENT_URL", None, "the segment service's base URL",
                               shown="`DL_AI_REFERENCE_URL`")
    segment_timeout: float = setting("DL_AI_SEGMENT_TIMEOUT", 10.0, "segment call timeout, seconds (an annotator "
                                     "waits for it)", number(0))
    classify: str = setting("DL_AI_CLASSIFY", "http", "classify stage: `http`, `sagemaker` or `off`",
                            choice("http", "sagemaker", "off"))
    classify_url: str = setting("DL_AI_CLASSIFY_URL", None, "classify service (`http`)",
                                shown="`…/v1/classify` of `DL_AI_REFERENCE_URL`")
    classify_timeout: float = setting("DL_AI_CLASSIFY_TIMEOUT", 30.0, "classify call timeout, seconds", number(0))
    classify_input: str = setting("DL_AI_CLASSIFY_INPUT", "original", "what classify is sent: `original` or the "
                                  "crop's `standardised` image", choice("original", "standardised"))
    sagemaker_endpoint: str = setting("DL_AI_SAGEMAKER_ENDPOINT", "", "SageMaker endpoint name (`sagemaker`); it "
                                      "answers JSON `{\"probabilities\": {code: p}}`")
    sagemaker_region: str = setting("DL_AI_SAGEMAKER_REGION", None, "SageMaker region",
                                    shown="`AWS_DEFAULT_REGION`")
    sagemaker_url: str | None = setting("DL_AI_SAGEMAKER_URL", None, "SageMaker endpoint URL override")
    sagemaker_format: str = setting("DL_AI_SAGEMAKER_FORMAT", "raw", "SageMaker request body: `raw` (image bytes) or "
                                    "`json` (`{\"image_base64\", \"media_type\"}`)", choice("raw", "json"))
    recommend: str = setting("DL_AI_RECOMMEND", "taxonomy", "recommend stage: `taxonomy` (in SQL), `openai` or "
                             "`off`", choice("taxonomy", "openai", "off"))
    recommend_url: str = setting("DL_AI_RECOMMEND_URL", None, "the chat-completions endpoint of `openai`",
                                 shown="`DL_AI_OPENAI_BASE_URL`")
    recommend_timeout: float = setting("DL_AI_RECOMMEND_TIMEOUT", 30.0, "recommend call timeout, seconds",
                                       number(0))
    openai_base_url: str = setting("DL_AI_OPENAI_BASE_URL", "", "the chat-completions API (`…/v1`)")
    openai_model: str = setting("DL_AI_OPENAI_MODEL", "", "its model")
    openai_api_key: str = setting("DL_AI_OPENAI_API_KEY", "", "its key")


@dataclass(frozen=True)
class AiWorker:
    """How the worker takes and retries jobs."""
    concurrency: int = setting("DL_AI_CONCURRENCY", 4, "jobs run at once per worker", integer(1))
    lease_seconds: int = setting("DL_AI_LEASE_SECONDS", 120, "a job's lease (at least twice the longest stage "
                                 "timeout)", integer(1))
    max_attempts: int = setting("DL_AI_MAX_ATTEMPTS", 5, "attempts of a job before it fails", integer(1))
    backoff_seconds: float = setting("DL_AI_BACKOFF_SECONDS", 2.0, "first retry's wait, doubled at each attempt",
                                     number(0))
    backoff_cap_seconds: float = setting("DL_AI_BACKOFF_CAP_SECONDS", 300.0, "longest wait between attempts",
                                         number(0))
    breaker_failures: int = setting("DL_AI_BREAKER_FAILURES", 5, "transient errors in a row that open a stage's "
                                    "circuit breaker", integer(1))
    breaker_reset_seconds: float = setting("DL_AI_BREAKER_RESET_SECONDS", 30.0, "how long an open breaker takes no "
                                           "jobs before one trial", number(0))
    poll_seconds: float = setting("DL_AI_POLL_SECONDS", 2.0, "polling fallback beside NOTIFY", number(0))
    shutdown_grace_seconds: float = setting("DL_AI_SHUTDOWN_GRACE_SECONDS", 20.0, "how long running jobs may finish "
                                            "at shutdown", number(0))


@dataclass(frozen=True)
class Settings:
    """Everything, by concern (made by load())."""
    database: Database
    cluster: Cluster
    server: Server
    limits: Limits
    auth: Auth
    oidc: Oidc
    storage: Storage
    metrics: Metrics
    ai: Ai
    ai_stages: AiStages
    ai_worker: AiWorker

    @property
    def database_url(self) -> str:
        return self.database.url

    @property
    def embedded(self) -> bool:
        return self.database.embedded


GROUPS: dict[str, type] = {"database": Database, "cluster": Cluster, "server": Server, "limits": Limits, "auth": Auth,
                           "oidc": Oidc, "storage": Storage, "metrics": Metrics, "ai": Ai, "ai_stages": AiStages,
                           "ai_worker": AiWorker}
assert list(GROUPS) == [f.name for f in fields(Settings)]


def variables() -> list[tuple[str, Var]]:
    """(group name, variable) for every setting, in the order of the object."""
    return [(group, f.metadata["var"]) for group, cls in GROUPS.items() for f in fields(cls) if "var" in f.metadata]


def embedded_url(socket_dir: Path, port: int, dbname: str = "dermlabel", user: str = "postgres") -> str:
    return f"postgresql:///{dbname}?host={quote(str(socket_dir), safe='/')}&port={port}&user={user}"


def _read(cls: type, env: Mapping[str, str]) -> Any:
    values = {}
    for f in fields(cls):
        var = f.metadata.get("var")
        if var is None:
            continue
        raw = env.get(var.env, "")
        values[f.name] = var.parse(var.env, raw) if raw != "" else f.default
    return cls(**values)


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Every setting from `env` (the process environment by default), checked; SettingsError names the first
    variable with a value the app cannot use."""
    env = os.environ if env is None else env
    groups = {name: _read(cls, env) for name, cls in GROUPS.items()}
    cluster: Cluster = replace(groups["cluster"], data_dir=groups["cluster"].data_dir.resolve())
    database: Database = groups["database"]
    if database.url is None:
        database = replace(database, url=embedded_url(cluster.socket_dir, cluster.pg_port), embedded=True)
    storage: Storage = groups["storage"]
    if storage.image_dir is None:
        storage = replace(storage, image_dir=cluster.data_dir / "images")
    if storage.kind == "s3" and not storage.s3_bucket:
        raise SettingsError("DL_S3_BUCKET must be set when DL_STORAGE=s3")
    ai: Ai = groups["ai"]
    if ai.reference_url is None:
        ai = replace(ai, reference_url=f"http://{ai.host}:{ai.port}")
    ref = ai.reference_url.rstrip("/")
    stages: AiStages = groups["ai_stages"]
    stages = replace(stages, crop_url=stages.crop_url or f"{ref}/v1/crop",
                     segment_url=stages.segment_url or ref,
                     classify_url=stages.classify_url or f"{ref}/v1/classify",
                     recommend_url=stages.recommend_url if stages.recommend_url is not None else stages.openai_base_url,
                     sagemaker_region=stages.sagemaker_region if stages.sagemaker_region is not None
                     else env.get("AWS_DEFAULT_REGION", ""))
    worker: AiWorker = groups["ai_worker"]
    longest = max(stages.crop_timeout, stages.segment_timeout, stages.classify_timeout, stages.recommend_timeout)
    if worker.lease_seconds < 2 * longest:
        raise SettingsError(f"DL_AI_LEASE_SECONDS ({worker.lease_seconds}) must be at least twice the longest stage "
                            f"timeout ({longest:g} s), or a slow call could outlive its lease")
    return Settings(**{**groups, "cluster": cluster, "database": database, "storage": storage, "ai": ai,
                       "ai_stages": stages})


def markdown() -> str:
    """The README's configuration table: one row per variable, grouped as the object is."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for group, cls in GROUPS.items():
        rows.append(f"| *{group}* | | *{' '.join((cls.__doc__ or '').split())}* |")
        for f in fields(cls):
            if var := f.metadata.get("var"):
                rows.append(f"| `{var.env}` | {var.shown}{' ' if var.shown else ''}| {var.doc} |")
    return "\n".join(rows) + "\n"
