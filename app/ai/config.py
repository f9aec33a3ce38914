"""The worker's configuration, from the environment: each stage configured on its own."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageConfig:
    name: str          # crop | segment | classify | recommend
    mode: str          # http | sagemaker | openai | taxonomy | off
    url: str = ""
    timeout: float = 30.0
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerConfig:
    stages: dict[str, StageConfig]
    concurrency: int = 4
    lease_seconds: int = 120
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    backoff_cap_seconds: float = 300.0
    poll_seconds: float = 2.0
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    shutdown_grace_seconds: float = 20.0


MODES = {"crop": ("http", "off"), "segment": ("http", "off"), "classify": ("http", "sagemaker", "off"),
         "recommend": ("taxonomy", "openai", "off")}
DEFAULT_TIMEOUT = {"segment": "10"}  # the app waits for it while an annotator clicks; the others run in the background


def reference_url(env=os.environ) -> str:
    return env.get("DL_AI_REFERENCE_URL",
                   f"http://{env.get('DL_AI_HOST', '127.0.0.1')}:{env.get('DL_AI_PORT', '8001')}")


def _stage(env, name: str, default_mode: str, default_url: str, **options) -> StageConfig:
    mode = env.get(f"DL_AI_{name.upper()}", default_mode)
    if mode not in MODES[name]:
        raise ValueError(f"DL_AI_{name.upper()}={mode!r}: one of {', '.join(MODES[name])}")
    return StageConfig(name, mode, env.get(f"DL_AI_{name.upper()}_URL", default_url),
                       float(env.get(f"DL_AI_{name.upper()}_TIMEOUT", DEFAULT_TIMEOUT.get(name, "30"))), options)


def segment(env=os.environ) -> StageConfig:
    """The segment service (DL_AI_SEGMENT=http|off, DL_AI_SEGMENT_URL its base URL, DL_AI_SEGMENT_TIMEOUT): the
    worker's prepare stage and the app's click-to-segment route both use it."""
    return _stage(env, "segment", "http", reference_url(env).rstrip("/"))


def load(env=os.environ) -> WorkerConfig:
    ref = reference_url(env).rstrip("/")

    def stage(name: str, default_mode: str, default_url: str, **options) -> StageConfig:
        return _stage(env, name, default_mode, default_url, **options)

    stages = {
        "crop": stage("crop", "http", f"{ref}/v1/crop"),
        "segment": segment(env),
        "classify": stage("classify", "http", f"{ref}/v1/classify",
                          input=env.get("DL_AI_CLASSIFY_INPUT", "original"),
                          sagemaker_endpoint=env.get("DL_AI_SAGEMAKER_ENDPOINT", ""),
                          sagemaker_region=env.get("DL_AI_SAGEMAKER_REGION", env.get("AWS_DEFAULT_REGION", "")),
                          sagemaker_url=env.get("DL_AI_SAGEMAKER_URL") or None,
                          # raw: the image bytes as the body; json: {"image_base64", "media_type"} (custom containers)
                          sagemaker_format=env.get("DL_AI_SAGEMAKER_FORMAT", "raw")),
        "recommend": stage("recommend", "taxonomy", env.get("DL_AI_OPENAI_BASE_URL", ""),
                           model=env.get("DL_AI_OPENAI_MODEL", ""), api_key=env.get("DL_AI_OPENAI_API_KEY", "")),
    }
    if stages["classify"].options["sagemaker_format"] not in ("raw", "json"):
        raise ValueError("DL_AI_SAGEMAKER_FORMAT: raw or json")
    if stages["classify"].options["input"] not in ("original", "standardised"):
        raise ValueError("DL_AI_CLASSIFY_INPUT: original or standardised")
    cfg = WorkerConfig(
        stages=stages,
        concurrency=int(env.get("DL_AI_CONCURRENCY", "4")),
        lease_seconds=int(env.get("DL_AI_LEASE_SECONDS", "120")),
        max_attempts=int(env.get("DL_AI_MAX_ATTEMPTS", "5")),
        backoff_seconds=float(env.get("DL_AI_BACKOFF_SECONDS", "2")),
        backoff_cap_seconds=float(env.get("DL_AI_BACKOFF_CAP_SECONDS", "300")),
        poll_seconds=float(env.get("DL_AI_POLL_SECONDS", "2")),
        breaker_failures=int(env.get("DL_AI_BREAKER_FAILURES", "5")),
        breaker_reset_seconds=float(env.get("DL_AI_BREAKER_RESET_SECONDS", "30")),
        shutdown_grace_seconds=float(env.get("DL_AI_SHUTDOWN_GRACE_SECONDS", "20")),
    )
    longest = max(s.timeout for s in stages.values())
    if cfg.lease_seconds < 2 * longest:
        raise ValueError(f"DL_AI_LEASE_SECONDS ({cfg.lease_seconds}) must be at least twice the longest stage "
                         f"timeout ({longest:g} s), or a slow call could outlive its lease")
    return cfg
