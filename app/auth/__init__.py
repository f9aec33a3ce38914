"""Who is calling: tokens, session cookies and CSRF; password and OIDC sign-in."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of sign-in (password, OIDC) and sign-out, for create_app."""
    from .oidc import oidc_callback, oidc_login
    from .routes import login, logout

    return [login, logout, oidc_login, oidc_callback]
