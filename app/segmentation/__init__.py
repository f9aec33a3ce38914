"""Click-to-segment: the route that forwards clicks to the segment service, and the masks it answers (RLE)."""


def route_handlers() -> list:
    """The HTTP handlers of click-to-segment, for create_app."""
    from .routes import segment

    return [segment]
