"""Data in and out for ML: the dataset export (records, COCO, mask archives) and label import."""
