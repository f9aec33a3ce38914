"""Click-to-segment: the route that forwards clicks to the segment service, and the masks it answers (RLE)."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of click-to-segment, for create_app."""
    from .routes import segment

    return [segment]
