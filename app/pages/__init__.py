"""The web UI's server-rendered pages: sign-in, workspaces, admin, organizations, the metrics dashboard."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of the pages and the dashboard, for create_app."""
    from .dashboard import dashboard, dashboard_csv
    from .routes import admin_page, home, login_page, organizations_page, review_page, work_page

    return [home, login_page, work_page, review_page, admin_page, organizations_page, dashboard, dashboard_csv]
