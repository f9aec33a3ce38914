"""Making an upload safe to keep: a real image of an accepted format, not a bomb, without identifying metadata."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

from PIL import ExifTags, Image, ImageOps

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "TIFF": ("image/tiff", "tif"),
           "WEBP": ("image/webp", "webp")}
MAX_PIXELS = 120_000_000  # larger than any dermoscope or phone photo; beyond it we assume a decompression bomb


class Rejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Clean:
    data: bytes
    thumb: bytes
    sha256: str  # of the uploaded bytes: the same file uploaded twice is recognised
    media_type: str
    ext: str
    width: int
    height: int
    removed: list[str] = field(default_factory=list)
    dicom: bytes | None = None  # a DICOM upload's de-identified file, kept beside its rendering
    metadata: dict = field(default_factory=dict)  # what the format adds to image.metadata


def _removed_metadata(img: Image.Image) -> list[str]:
    found = []
    exif = img.getexif()
    for tag in exif:
        found.append(f"EXIF:{ExifTags.TAGS.get(tag, tag)}")
    if ExifTags.IFD.GPSInfo in exif or exif.get_ifd(ExifTags.IFD.GPSInfo):
        found.append("EXIF:GPSInfo")
    for key in ("xmp", "XML:com.adobe.xmp", "comment", "photoshop", "iptc"):
        if key in img.info:
            found.append(key.split(":")[0].upper() if ":" in key else key.upper())
    if img.format == "PNG":
        found += [f"PNG:{k}" for k in img.info if k not in ("dpi", "gamma", "icc_profile", "transparency", "xmp")]
    return sorted(set(found))


def clean(raw: bytes, max_bytes: int) -> Clean:
    if len(raw) > max_bytes:
        raise Rejected(413, f"larger than the {max_bytes // (1024 * 1024)} MB limit")
    digest = hashlib.sha256(raw).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            probe = Image.open(io.BytesIO(raw))
            if probe.format not in FORMATS:
                raise Rejected(415, f"{probe.format or 'this'} files are not accepted (JPEG, PNG, TIFF, WebP)")
            probe.verify()  # structure check; the image must be reopened after it
            img = Image.open(io.BytesIO(raw))
            img.load()
        except Rejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Rejected(413, f"more than {MAX_PIXELS // 1_000_000} megapixels: refused as a decompression bomb")
        except Exception:  # Pillow raises many types for broken or foreign files
            raise Rejected(415, "not a readable image (JPEG, PNG, TIFF or WebP)") from None
    fmt = img.format
    media_type, ext = FORMATS[fmt]
    removed = _removed_metadata(img)
    icc = img.info.get("icc_profile")  # colour matters in dermatology and identifies no one: kept
    rotated = img.getexif().get(0x0112, 1) not in (None, 1)
    # apply the orientation before its tag goes away; an upright JPEG is re-saved with its own quantisation tables
    upright = ImageOps.exif_transpose(img) if rotated else img
    out = io.BytesIO()
    options: dict = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        keep = {"quality": 95, "subsampling": 0} if rotated else {"quality": "keep", "subsampling": "keep"}
        upright.save(out, "JPEG", **keep, **options)
    elif fmt == "PNG":
        upright.save(out, "PNG", optimize=False, **options)
    elif fmt == "TIFF":
        upright.save(out, "TIFF", compression="tiff_deflate", **options)
    else:
        upright.save(out, "WEBP", lossless=True, **options)
    thumb = upright.convert("RGB")
    thumb.thumbnail((320, 320))
    tbuf = io.BytesIO()
    thumb.save(tbuf, "JPEG", quality=85)
    return Clean(out.getvalue(), tbuf.getvalue(), digest, media_type, ext, upright.width, upright.height, removed)
