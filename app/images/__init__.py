"""Images: upload and download routes, cleaning an upload to what is safe to keep, where the bytes are stored."""
from ..config import MB, Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of image upload and the image bytes, for create_app. The upload sits in a router of its
    own, whose request limit (DL_MAX_REQUEST_MB) lets it carry many files; other routes keep Litestar's 10 MB."""
    from litestar import Router

    from .routes import dicom_file, dicom_frame, image, standardised, thumbnail, upload

    uploads = Router("/", route_handlers=[upload], request_max_body_size=settings.limits.max_request_mb * MB)
    return [uploads, image, thumbnail, standardised, dicom_file, dicom_frame]
