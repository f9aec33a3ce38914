"""A Flyway-compatible migration applier: same history table, checksums, ordering and advisory lock."""
