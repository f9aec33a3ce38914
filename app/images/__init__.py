"""Images: upload and download routes, cleaning an upload to what is safe to keep, where the bytes are stored."""


def route_handlers() -> list:
    """The HTTP handlers of image upload and the image bytes, for create_app."""
    from .routes import dicom_file, dicom_frame, image, standardised, thumbnail, upload

    return [upload, image, thumbnail, standardised, dicom_file, dicom_frame]
