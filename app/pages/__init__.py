"""The web UI's server-rendered pages: sign-in, workspaces, admin, organizations, the metrics dashboard."""
