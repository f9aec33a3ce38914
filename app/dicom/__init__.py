"""DICOM: de-identification, intake of an upload, pixel rendering, DICOMweb import, DICOM Segmentation objects."""
