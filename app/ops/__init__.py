"""Running it: /healthz, /metrics, the metrics refresher, the embedded PostgreSQL cluster, webhook deliveries."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of /healthz and /metrics, for create_app."""
    from .health import healthz
    from .metrics import metrics

    return [healthz, metrics]
