"""Running it: /healthz, /metrics, the metrics refresher, the embedded PostgreSQL cluster, webhook deliveries."""
