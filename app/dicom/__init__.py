"""DICOM: de-identification, intake of an upload, pixel rendering, DICOMweb import, DICOM Segmentation objects."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of DICOMweb search and import, for create_app."""
    from .dicomweb import import_series, search_series

    return [search_series, import_series]
