"""The worker's configuration, from the settings (app/config.py: DL_AI_*, checked there): each stage on its own."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Settings


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


def segment(s: Settings) -> StageConfig:
    """The segment service (DL_AI_SEGMENT=http|off, DL_AI_SEGMENT_URL its base URL, DL_AI_SEGMENT_TIMEOUT): the
    worker's prepare stage and the app's click-to-segment route both use it."""
    a = s.ai_stages
    return StageConfig("segment", a.segment, a.segment_url, a.segment_timeout)


def load(s: Settings) -> WorkerConfig:
    a, w = s.ai_stages, s.ai_worker
    stages = {
        "crop": StageConfig("crop", a.crop, a.crop_url, a.crop_timeout),
        "segment": segment(s),
        "classify": StageConfig("classify", a.classify, a.classify_url, a.classify_timeout, {
            "input": a.classify_input, "sagemaker_endpoint": a.sagemaker_endpoint,
            "sagemaker_region": a.sagemaker_region, "sagemaker_url": a.sagemaker_url,
            # raw: the image bytes as the body; json: {"image_base64", "media_type"} (custom containers)
            "sagemaker_format": a.sagemaker_format}),
        "recommend": StageConfig("recommend", a.recommend, a.recommend_url, a.recommend_timeout,
                                 {"model": a.openai_model, "api_key": a.openai_api_key}),
    }
    return WorkerConfig(stages=stages, concurrency=w.concurrency, lease_seconds=w.lease_seconds,
                        max_attempts=w.max_attempts, backoff_seconds=w.backoff_seconds,
                        backoff_cap_seconds=w.backoff_cap_seconds, poll_seconds=w.poll_seconds,
                        breaker_failures=w.breaker_failures, breaker_reset_seconds=w.breaker_reset_seconds,
                        shutdown_grace_seconds=w.shutdown_grace_seconds)
