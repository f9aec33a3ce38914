"""Making an upload safe to keep: a real image of an accepted format, not a bomb, without identifying metadata.

Every raster we store is rebuilt, never re-saved: a new image made from the decoded pixels alone (no `info`, no
tags, no EXIF, no text travels; Pillow's writers copy a source's comment and TIFF tags when handed the source image),
encoded with only what we decide to keep. We keep colour: an image with an ICC profile has its pixels converted to
sRGB and carries one fixed sRGB profile built here, the same bytes in every file, with no text from the upload.
What was removed is computed from the bytes, not from Pillow's view of them: metadata_scan lists the blocks of the
upload and of what we store, and the difference is the report."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageCms, ImageOps, JpegImagePlugin

from . import metadata_scan

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "TIFF": ("image/tiff", "tif"),
           "WEBP": ("image/webp", "webp")}
MAX_PIXELS = 120_000_000  # larger than any dermoscope or phone photo; beyond it we assume a decompression bomb
MAX_REPORT = 400  # labels in the report of removed metadata; a file with more unknown tags is summarised
# modes stored as they are; the others are converted first (a palette to its colours, premultiplied alpha to
# straight alpha, CMYK and YCbCr to RGB); any mode not named here is refused
KEEP_MODES = {"1", "L", "LA", "RGB", "RGBA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
CONVERT_MODES = {"P": None, "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB"}


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


def _srgb_profile() -> bytes:
    """lcms's sRGB, with the header's creation date (the moment it was built) zeroed: every file we store carries
    the same profile bytes, whose only text is lcms's own ('sRGB built-in', 'No copyright, use freely')."""
    built = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return built[:24] + bytes(12) + built[36:84] + bytes(16) + built[100:]  # date; profile ID (0 = not computed)


SRGB = _srgb_profile()
_SRGB_CMS = ImageCms.ImageCmsProfile(io.BytesIO(SRGB))
# what a stored file may still carry: the sRGB profile above (PNG names its profile 'ICC Profile', as Pillow writes)
ALLOWED = {(b.label, b.payload) for b in metadata_scan.icc_blocks(SRGB)} | {("ICC:name", b"ICC Profile")}


def rebuild(img: Image.Image) -> Image.Image:
    """The pixels alone in a new image: nothing of the source's `info` (comment, EXIF, XMP, ICC, text chunks),
    TIFF tags or palette metadata comes along."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or img.has_transparency_data else "RGB")
    fresh = Image.new(img.mode, img.size)  # info {}, no tags, no palette: a blank canvas of the same kind
    fresh.paste(img, (0, 0))  # pixels only (one copy in C; tobytes/frombytes costs three)
    return fresh


def encode(img: Image.Image, fmt: str, icc: bytes | None = None, **options) -> bytes:
    """The one way bytes of a raster are written: rebuilt from pixels, then encoded with the given options and
    (optionally) the given ICC profile, nothing else."""
    out = io.BytesIO()
    rebuild(img).save(out, fmt, **({"icc_profile": icc} if icc else {}), **options)
    return out.getvalue()


def thumbnail(img: Image.Image) -> bytes:
    thumb = img.convert("RGB") if img.mode != "RGB" else img.copy()
    thumb.thumbnail((320, 320))
    return encode(thumb, "JPEG", quality=85)  # rebuilt there, at thumbnail size


def leftovers(data: bytes) -> list[str]:
    """Metadata a file we wrote still carries, beyond the sRGB profile we put there (must be none)."""
    return sorted({b.label for b in metadata_scan.scan(data) if (b.label, b.payload) not in ALLOWED})


def _frames(img: Image.Image, raw: bytes) -> None:
    """One image per upload. A TIFF's reduced-resolution pages (previews of page 1) are dropped; an MPO's further
    pictures are previews, depth maps or the other eye of a stereo pair, its first is the photograph; any other
    file with several images (multi-page TIFF, animated PNG or WebP) is refused rather than cut to its first."""
    n = getattr(img, "n_frames", 1)
    if n <= 1 or img.format == "MPO":
        return
    if img.format == "TIFF":
        pages = Image.open(io.BytesIO(raw))
        for i in range(1, n):
            pages.seek(i)
            if not int(pages.tag_v2.get(254, 0)) & 1:  # NewSubfileType: 1 = a reduced-resolution version
                raise Rejected(415, f"a TIFF of {n} pages: upload each page as its own file")
        return
    raise Rejected(415, f"an animation of {n} frames: upload a still image")


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """Pixels converted from the file's own profile to sRGB (relative colorimetric: colours inside sRGB, which
    skin is, come through unchanged); alpha carried over untouched."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError):
        raise Rejected(415, "its colour profile (ICC) cannot be read") from None
    alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
    base = img.convert(img.mode[:-1]) if alpha is not None else img
    try:
        out = ImageCms.profileToProfile(base, source, _SRGB_CMS, outputMode="RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except (OSError, ValueError, ImageCms.PyCMSError):
        raise Rejected(415, f"its colour profile (ICC) does not fit its {img.mode} pixels") from None
    if alpha is not None:
        out.putalpha(alpha)
    return out


def storable(img: Image.Image) -> tuple[Image.Image, bytes | None]:
    """An image's pixels as we store them, and the ICC profile to embed with them (None: no profile)."""
    icc = img.info.get("icc_profile") or None
    return _upright(img, icc), (SRGB if icc else None)


def _upright(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Upright pixels (the EXIF orientation applied before the tag goes) in a mode we store, in sRGB when the file
    said what its colours are."""
    try:
        orientation = img.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(img) if orientation in range(2, 9) else img
    except Exception:  # a damaged EXIF block: the picture as it lies
        upright = img
    if upright.mode in CONVERT_MODES:
        target = CONVERT_MODES[upright.mode]
        if upright.mode == "CMYK" and icc:
            return _to_srgb(upright, icc)
        upright = upright.convert(target) if target else rebuild(upright)
    elif upright.mode not in KEEP_MODES:
        raise Rejected(415, f"{upright.mode} images are not accepted")
    return _to_srgb(upright, icc) if icc else upright


def clean(raw: bytes, max_bytes: int) -> Clean:
    if len(raw) > max_bytes:
        raise Rejected(413, f"larger than the {max_bytes // (1024 * 1024)} MB limit")
    digest = hashlib.sha256(raw).hexdigest()
    try:  # our own walk first: it is bounded, and a crafted structure must not reach Pillow
        before = metadata_scan.scan(raw)
    except ValueError:
        before = None  # not a container we read: Pillow's answer below says why
    if before and any(b.label.endswith(metadata_scan.CRAFTED) for b in before):
        raise Rejected(415, "a crafted file (its metadata structures overlap or never end): refused")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            probe = Image.open(io.BytesIO(raw))
            if probe.format not in FORMATS and probe.format != "MPO":
                raise Rejected(415, f"{probe.format or 'this'} files are not accepted (JPEG, PNG, TIFF, WebP)")
            probe.verify()  # structure check; the image must be reopened after it
            img = Image.open(io.BytesIO(raw))
            _frames(img, raw)
            img.load()
            fmt = "JPEG" if img.format == "MPO" else img.format
            if before is None:
                raise Rejected(415, f"this {fmt} file's structure could not be read")
        except Rejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Rejected(413, f"more than {MAX_PIXELS // 1_000_000} megapixels: refused as a decompression bomb")
        except Exception:  # Pillow raises many types for broken or foreign files
            raise Rejected(415, "not a readable image (JPEG, PNG, TIFF or WebP)") from None
    media_type, ext = FORMATS[fmt]
    try:
        rotated = img.getexif().get(0x0112, 1) in range(2, 9)
    except Exception:  # a damaged EXIF block: no orientation to apply (exif_transpose will find none either)
        rotated = False
    upright, kept_icc = storable(img)
    if fmt == "JPEG":
        # an upright JPEG is re-encoded with its own quantisation tables and chroma subsampling (pixel encoding,
        # not metadata: what quality="keep" does, which needs the source image object we no longer hand over)
        tables = getattr(img, "quantization", None)
        if not rotated and tables and upright.mode == img.mode:
            options: dict = {"qtables": tables, "subsampling": JpegImagePlugin.get_sampling(img)}
        else:
            options = {"quality": 95, "subsampling": 0}
    elif fmt == "PNG":
        options = {"optimize": False}
    elif fmt == "TIFF":
        options = {"compression": "tiff_deflate"}
    else:
        options = {"lossless": True}
    try:
        data = encode(upright, fmt, kept_icc, **options)
        thumb = thumbnail(upright)
    except Exception:  # a mode or size the encoder cannot write
        raise Rejected(415, f"this {fmt} image could not be stored without its metadata") from None
    left = leftovers(data) + leftovers(thumb)
    if left:
        raise Rejected(415, f"this {fmt} image could not be stored without its metadata ({', '.join(left)})")
    removed = metadata_scan.removed(before, metadata_scan.scan(data))
    if len(removed) > MAX_REPORT:
        removed = removed[:MAX_REPORT] + [f"… and {len(removed) - MAX_REPORT} more"]
    return Clean(data, thumb, digest, media_type, ext, upright.width, upright.height, removed)
