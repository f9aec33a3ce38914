"""A DICOM upload made safe to keep: read, de-identified (dicom_deid), frame 1 rendered with the file's window as
the PNG everything else uses (annotation, AI, export); the de-identified file is kept beside it for the viewer's
window/level and frames. The uploaded bytes themselves are never stored."""
from __future__ import annotations

import hashlib
import io
import re
import warnings

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate, generate_frames

from ..images.imaging import MAX_PIXELS, Clean, Rejected, encode, thumbnail
from .deid import Key, deidentify
from .pixels import frame_count, read_frame, window8

BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"}
VL_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4"


def is_dicom(raw: bytes) -> bool:
    """Part 10 files carry 'DICM' after a 128-byte preamble; that is what we accept."""
    return len(raw) > 132 and raw[128:132] == b"DICM"


def header_json(ds: pydicom.Dataset) -> dict:
    """The de-identified header as keyword → value (text and numbers only; binary and sequences left out)."""
    out: dict = {}
    for elem in ds:
        if elem.VR in BINARY_VRS or elem.tag.is_private or not elem.keyword or elem.value in (None, ""):
            continue
        value = elem.value
        if elem.VM > 1:
            value = [v if isinstance(v, (int, float)) else str(v) for v in value]
        elif not isinstance(value, (int, float)):
            value = str(value)
        if len(str(value)) <= 256:
            out[elem.keyword] = value
    return out


def clean_dicom(raw: bytes, max_bytes: int, key: Key) -> Clean:
    if len(raw) > max_bytes:
        raise Rejected(413, f"larger than the {max_bytes // (1024 * 1024)} MB limit")
    digest = hashlib.sha256(raw).hexdigest()
    # pydicom parses elements lazily: a damaged one surfaces when de-identification reads it, not at dcmread.
    # Whatever pydicom raises on the way is a file we cannot read, never a server error.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about every odd value; de-identification decides
            ds = pydicom.dcmread(io.BytesIO(raw))
            if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
                raise Rejected(415, "this DICOM file has no image (a report or a waveform?): nothing to annotate")
            rows, columns, frames = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0), frame_count(ds)
            if rows * columns == 0:
                raise Rejected(415, "this DICOM file's image has no rows or columns")
            if rows * columns * frames > MAX_PIXELS:
                raise Rejected(413, f"{rows}×{columns}×{frames} pixels: more than {MAX_PIXELS // 1_000_000} "
                                    "megapixels, refused")
            sop_class = str(ds.get("SOPClassUID", ""))
            report = deidentify(ds, key)
            in_pixels = _clean_jpeg_frames(ds)
    except Rejected:
        raise
    except Exception as exc:  # pydicom raises many types for broken files, as Pillow does
        raise Rejected(415, f"not a readable DICOM file ({type(exc).__name__})") from None
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=True)
        stored = out.getvalue()
        frame = read_frame(stored, ds, 0)
    except Exception as exc:  # codecs pydicom lacks (JPEG-LS, JPEG 2000 without a plugin), broken pixel data
        raise Rejected(415, f"DICOM pixel data could not be decoded ({type(exc).__name__})") from None
    pixels = window8(frame)
    img = Image.fromarray(pixels, "L" if frame.samples == 1 else "RGB")
    # rebuilt from the pixels like every raster we store; lossless either way, and level 6 took 4 s on a
    # 12-megapixel photograph
    png = encode(img, "PNG", compress_level=1)
    thumb = thumbnail(img)
    removed = [f"DICOM:{a['keyword'] or a['tag']} ({a['action']})" for a in report.actions]
    if report.private_removed:
        removed.append(f"DICOM:private attributes ({report.private_removed} removed)")
    removed += [f"DICOM:Pixel Data {label}" for label in in_pixels]
    meta = {
        "frames": frames, "rows": rows, "columns": columns, "samples": frame.samples,
        "window_center": frame.center, "window_width": frame.width, "invert": frame.invert,
        "dtype": str(frame.values.dtype), "modality": str(ds.get("Modality", "")),
        "photographic": sop_class == VL_PHOTOGRAPHIC, "patient_pseudonym": report.patient_pseudonym,
        "deidentification": ds.DeidentificationMethod, "header": header_json(ds),
    }
    extra = {"dicom": meta}
    if (mm := _column_spacing(ds)) is not None:
        extra["pixels_per_mm"] = round(1 / mm, 6)  # the ruler measures in mm
    return Clean(png, thumb, digest, "image/png", "png", int(pixels.shape[1]),
                 int(pixels.shape[0]), removed, dicom=stored, metadata=extra)


# JPEG baseline, extended, lossless (both) and JPEG-LS (both): a marker stream with APPn and COM segments
JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                 "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
JPEG_LS_SYNTAXES = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
_END_OF_SCAN = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")  # JPEG: FF 00 is a stuffed byte
_END_OF_SCAN_LS = re.compile(rb"\xff(?=[\x80-\xcf\xd8-\xfe])")  # JPEG-LS: FF then a byte < 80 is coded data


def _app_label(marker: int, body: bytes) -> str:
    """What an APPn segment is, by its identifier (which itself is never reported: it could be any text)."""
    known = {(0xE1, b"Exif\0"): "EXIF", (0xE1, b"http://ns.adobe.com/x"): "XMP", (0xE2, b"ICC_PROFILE"): "ICC",
             (0xED, b"Photoshop 3.0"): "IPTC/Photoshop"}
    return next((label for (m, prefix), label in known.items() if m == marker and body.startswith(prefix)),
                f"JPEG:APP{marker - 0xE0}")


def _strip_jpeg(data: bytes, ls: bool) -> tuple[bytes, list[str]]:
    """A JPEG (or JPEG-LS) codestream without its metadata segments (EXIF, XMP, ICC, IPTC, comments, vendor
    APPn, a JFIF thumbnail, anything after the end of the image): the segments that decode the pixels are copied
    as they are, entropy-coded data untouched, so the pixels are bit for bit the same. Returns the stream and what
    was dropped; ValueError when it is not a stream we can walk."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("no start of image")
    out, dropped, p, n = [b"\xff\xd8"], [], 2, len(data)
    end_of_scan = _END_OF_SCAN_LS if ls else _END_OF_SCAN
    while True:
        while p + 1 < n and data[p] == 0xFF and data[p + 1] == 0xFF:  # fill bytes
            p += 1
        if p + 2 > n or data[p] != 0xFF:
            raise ValueError("broken marker stream")
        m = data[p + 1]
        if m == 0xD9:
            if len(data[p + 2:].strip(b"\0")) > 1:  # one byte is a fragment's padding to an even length
                dropped.append("JPEG:data after end of image")
            out.append(b"\xff\xd9")
            return b"".join(out), dropped
        if 0xD0 <= m <= 0xD7 or m == 0x01:
            out.append(data[p:p + 2])
            p += 2
            continue
        if p + 4 > n:
            raise ValueError("truncated segment")
        length = int.from_bytes(data[p + 2:p + 4], "big")
        if length < 2 or p + 2 + length > n:
            raise ValueError("truncated segment")
        segment, body = data[p:p + 2 + length], data[p + 4:p + 2 + length]
        p += 2 + length
        if m == 0xDA:  # the scan header, then its entropy-coded data up to the next marker
            found = end_of_scan.search(data, p)
            end = found.start() if found else n
            out.append(segment + data[p:end])
            p = end
        elif m == 0xFE:
            dropped.append("JPEG:COM")
        elif 0xE0 <= m <= 0xEF:
            jfif = m == 0xE0 and body.startswith(b"JFIF\0") and len(body) >= 14 and not (body[12] and body[13])
            adobe = m == 0xEE and body.startswith(b"Adobe")  # the colour transform flag decoding needs
            hp = m == 0xE8 and body.startswith(b"mrfx")  # JPEG-LS colour transform
            # SPIFF (JPEG-LS): its header (dimensions, colour space) and its end-of-directory entry are structure;
            # its other directory entries (title, description, time stamp, creator, copyright...) go
            spiff = m == 0xE8 and (body.startswith(b"SPIFF\0") or body == b"\0\0\0\x01\xff\xd8")
            if jfif or adobe or hp or spiff:
                out.append(segment)
            else:
                dropped.append(_app_label(m, body))
        else:
            out.append(segment)  # frame and scan headers, tables, restart interval, JPEG-LS parameters


def _clean_jpeg_frames(ds: pydicom.Dataset) -> list[str]:
    """Encapsulated JPEG frames carry their own metadata (a camera's JPEG wrapped whole into a VL Photographic
    Image keeps its EXIF: serial numbers, dates, GPS) inside Pixel Data, where de-identifying the header does not
    look. Each frame is rewritten without it (pixels unchanged); what went is reported."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if syntax not in JPEG_SYNTAXES or "PixelData" not in ds:
        return []
    extended = None
    if "ExtendedOffsetTable" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    frames, dropped = [], set()
    for frame in generate_frames(ds.PixelData, number_of_frames=frame_count(ds), extended_offsets=extended):
        try:
            clean, gone = _strip_jpeg(frame, syntax in JPEG_LS_SYNTAXES)
        except ValueError:
            raise Rejected(415, "this DICOM file's JPEG pixel data could not be read to remove its metadata") from None
        frames.append(clean)
        dropped.update(gone)
    if dropped:
        for tag in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if tag in ds:
                del ds[tag]
        ds.PixelData = encapsulate(frames, has_bot=len(frames) > 1)
        ds["PixelData"].VR = "OB"
    return sorted(dropped)


def _column_spacing(ds: pydicom.Dataset) -> float | None:
    """Pixel Spacing's column spacing in mm, when the file states a usable one (a damaged value is no scale)."""
    try:
        spacing = ds.get("PixelSpacing")
        mm = float(spacing[1]) if spacing and len(spacing) == 2 else 0.0
    except (TypeError, ValueError):
        return None
    return mm if mm > 0 else None


def frame_payload(stored: bytes, index: int) -> tuple[bytes, dict]:
    """One frame's values for the viewer's window/level: raw little-endian bytes and what they are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(stored), stop_before_pixels=True)
        if not 0 <= index < frame_count(ds):
            raise IndexError(index)
        frame = read_frame(stored, ds, index)
    values = frame.values.astype(frame.values.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(values).tobytes(), {
        "X-Dtype": str(frame.values.dtype), "X-Rows": str(values.shape[0]), "X-Columns": str(values.shape[1]),
        "X-Samples": str(frame.samples), "X-Frames": str(frame_count(ds))}
