"""Data in and out for ML: the dataset export (records, COCO, mask archives) and label import."""
from ..config import Settings


def route_handlers(settings: Settings) -> list:
    """The HTTP handlers of the export and one image's DICOM SEG, for create_app."""
    from .export import export, image_seg

    return [export, image_seg]
