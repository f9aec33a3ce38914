"""The RPC surface: every api function as POST/GET /rpc/<name>, from the catalog SQL keeps; the API description."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of /rpc/* and the API description, for create_app."""
    from .routes import openapi_json, rpc_get, rpc_post, schema_page

    return [rpc_post, rpc_get, schema_page, openapi_json]
