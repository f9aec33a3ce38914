"""DICOM Segmentation objects (highdicom) for images that came in as DICOM: BINARY, one segment per region label,
referencing the de-identified file the platform stores and serves (GET /images/{id}/dicom).

Everything about the patient and the study is copied by highdicom from that stored file, which was de-identified
at intake; nothing else about the patient is known here, so nothing identifying can be introduced.

Multi-frame sources: annotators outline frame 1 (the rendered image), and regions are on the pixel grid all frames
share, so the SEG has one frame per segment and references frame 1 of the source (Referenced Frame Number 1)."""
from __future__ import annotations

import hashlib
import io
import warnings

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

# Type 2 attributes highdicom reads from the source; a photograph often lacks some (absent is the same as empty)
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
          "StudyTime", "ReferringPhysicianName")
_DEID = ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
         "LongitudinalTemporalInformationModified")
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
LOCAL_SCHEME = "99DERMLABEL"  # a private coding scheme ("99" prefix, PS3.16 8.2) for labels without a code


class NotReferencable(ValueError):
    """The stored file cannot be the source of a SEG (no rows/columns matching the image, …)."""


def uid(*parts: str) -> str:
    """A UID derived from its inputs (2.25 + 128 bits of SHA-256): the same export of the same annotations gives
    the same SEG UIDs; other content gives others."""
    digest = hashlib.sha256("\x1f".join(("dermlabel-seg",) + parts).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _frame_one(ds: Dataset) -> Dataset:
    """The source header as a single-frame image (frame 1), which is what highdicom can derive a 2D mask from: it
    treats every multi-frame class as enhanced (functional groups), and refuses several frames without a frame of
    reference. The references are set back to the real class and frame afterwards (_refer_to_frame_one)."""
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        # enhanced multi-frame: frame 1's geometry moved to the top level, where single-frame images keep it
        groups = [g[0] for g in (ds.get("SharedFunctionalGroupsSequence"), ds.get("PerFrameFunctionalGroupsSequence"))
                  if g]
        for group in groups:
            for seq, keys in (("PixelMeasuresSequence", ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices")),
                              ("PlanePositionSequence", ("ImagePositionPatient",)),
                              ("PlaneOrientationSequence", ("ImageOrientationPatient",))):
                for item in group.get(seq) or []:
                    for k in keys:
                        if k in item:
                            setattr(ds, k, item[k].value)
        for k in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
            if k in ds:
                del ds[k]
    if "NumberOfFrames" in ds:  # a multi-frame class: presented as a single-frame one
        del ds["NumberOfFrames"]
        ds.SOPClassUID = SECONDARY_CAPTURE
    for k in _TYPE2:
        if k not in ds:
            setattr(ds, k, None)
    return ds


def _description(number: int, label: str) -> hd.seg.SegmentDescription:
    text = label[:64]
    if label == "lesion":
        category, kind = codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion
    else:  # dermoscopic structures have no code we are sure of: the project's label, in our local scheme
        category = codes.SCT.MorphologicallyAbnormalStructure
        kind = hd.sr.CodedConcept(value="L" + hashlib.sha256(label.encode()).hexdigest()[:15],
                                  scheme_designator=LOCAL_SCHEME, meaning=text)
    return hd.seg.SegmentDescription(segment_number=number, segment_label=text, segmented_property_category=category,
                                     segmented_property_type=kind, algorithm_type="MANUAL")


def build(source: bytes, segments: dict[str, np.ndarray], content_date: str | None = None) -> bytes:
    """The SEG (a Part 10 file) of `segments` (label → rows×columns mask, in segment order) on the stored
    de-identified `source`. content_date: the annotations' approval time, ISO 8601 (else highdicom's now)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = pydicom.dcmread(io.BytesIO(source), stop_before_pixels=True)
        multiframe, sop_class = "NumberOfFrames" in src, src.SOPClassUID
        view = _frame_one(src)
        rows, columns = int(view.get("Rows") or 0), int(view.get("Columns") or 0)
        labels = list(segments)
        stack = np.stack([segments[k] for k in labels], axis=-1).astype(np.uint8)[np.newaxis]
        if stack.shape[1:3] != (rows, columns):
            raise NotReferencable(f"the masks are {stack.shape[1]}×{stack.shape[2]}, the DICOM file {rows}×{columns}")
        kwargs = {}
        spacing = view.get("PixelSpacing")
        if spacing and len(spacing) == 2 and "SliceThickness" not in view:
            # DICOM lets a SEG without a frame of reference carry Pixel Spacing alone, but highdicom's reader
            # wants a Slice Thickness beside it: a photograph has none, so the nominal one is the row spacing
            kwargs["pixel_measures"] = hd.PixelMeasuresSequence(pixel_spacing=[float(v) for v in spacing],
                                                                slice_thickness=float(spacing[0]))
        digest = hashlib.sha256(stack.tobytes() + "\x1f".join(labels).encode()).hexdigest()
        seg = hd.seg.Segmentation(
            source_images=[view], pixel_array=stack, segmentation_type="BINARY",
            segment_descriptions=[_description(i + 1, k) for i, k in enumerate(labels)],
            series_instance_uid=uid("series", view.SOPInstanceUID),
            sop_instance_uid=uid("instance", view.SOPInstanceUID, digest), series_number=9001, instance_number=1,
            manufacturer="DermLabel", manufacturer_model_name="DermLabel segmentation export",
            software_versions="0.1.0", device_serial_number="DermLabel", content_label="DERMLABEL",
            content_description="Reviewed annotations (DermLabel)", series_description="DermLabel segmentation",
            specific_character_set="ISO_IR 192", **kwargs)
        for k in _DEID:  # derived from a de-identified file: say so, as the source does
            if k in view:
                seg[k] = view[k]
        if content_date:
            day, _, time = content_date.partition("T")
            seg.ContentDate = seg.SeriesDate = day.replace("-", "")
            seg.ContentTime = seg.SeriesTime = time[:8].replace(":", "") or "000000"
        if multiframe:
            _refer_to_frame_one(seg, view.SOPInstanceUID, sop_class)
        out = io.BytesIO()
        seg.save_as(out, enforce_file_format=True)
        return out.getvalue()


def _refer_to_frame_one(seg: Dataset, sop_uid: str, sop_class: str) -> None:
    """Every reference to the source gets its real SOP class back; source image references name frame 1."""
    def walk(ds: Dataset, source_item: bool) -> None:
        if ds.get("ReferencedSOPInstanceUID") == sop_uid:
            ds.ReferencedSOPClassUID = sop_class
            if source_item:
                ds.ReferencedFrameNumber = 1
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item, elem.keyword == "SourceImageSequence")
    walk(seg, False)
