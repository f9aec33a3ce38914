"""The HTTP server around the database: the app factory, the connection pool, errors, logs, request limits."""
