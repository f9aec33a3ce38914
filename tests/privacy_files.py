"""A corpus of image files carrying a fake patient in every metadata place: each place holds a string of its own
(and so does each file's name), so that any survivor can be traced to where it came from. Pillow writes what it
can; the rest (IPTC, XMP in JPEG, TIFF tags and IFDs, ICC text, unknown chunks, trailers) is written by hand."""
from __future__ import annotations

import io
import struct
import uuid
import zlib
from dataclasses import dataclass, field

import pydicom
from PIL import Image, ImageCms
from pydicom.encaps import encapsulate
from PIL.PngImagePlugin import PngInfo

from dicom_files import vl_photograph

TOKEN = uuid.uuid4().hex[:10]


def mark(place: str) -> str:
    """The planted string of one place: unique, and never a prefix of another (the token ends it)."""
    return f"DoeJanina-{place}-{TOKEN}"


@dataclass
class Sample:
    name: str  # the file name it is uploaded under (it carries a mark too)
    raw: bytes
    marks: list[str]  # every string planted in the file's bytes
    expected: set[str]  # labels the upload report must list (a subset: the report may list more)
    size: tuple[int, int]  # what the stored image's width and height must be (orientation applied)
    colour: tuple[int, int, int] | None = None  # the picture's colour, to check the pixels came through
    icc: bool = False
    name_marks: list[str] = field(default_factory=list)
    dark_corner: str | None = None  # where the picture's dark patch must be once upright: 'tl', 'tr', 'bl'

    @property
    def all_marks(self) -> list[str]:
        return self.marks + self.name_marks


def forms(text: str) -> list[bytes]:
    """The byte forms a planted string may take in a file: UTF-8 and both UTF-16s (EXIF XP tags, ICC mluc)."""
    return [text.encode(), text.encode("utf-16-le"), text.encode("utf-16-be")]


# -- building blocks ---------------------------------------------------------------------------------------------
def xmp(creator: str) -> bytes:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="{creator}"/></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode()


def iptc(byline: str, caption: str) -> bytes:
    """IPTC-IIM records: version, By-line (2:80), Caption (2:120)."""
    def rec(n: int, data: bytes) -> bytes:
        return b"\x1c\x02" + bytes([n]) + struct.pack(">H", len(data)) + data
    return rec(0, b"\x00\x04") + rec(80, byline.encode()) + rec(120, caption.encode())


def photoshop(resources: list[tuple[int, bytes]]) -> bytes:
    """Photoshop image resource blocks (8BIM), empty names."""
    out = b""
    for rid, data in resources:
        out += b"8BIM" + struct.pack(">H", rid) + b"\0\0" + struct.pack(">I", len(data))
        out += data + b"\0" * (len(data) % 2)
    return out


def _mluc(text: str) -> bytes:
    s = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(s), 28) + s


def planted_icc(desc: str, cprt: str, dmnd: str) -> bytes:
    """lcms's sRGB with its description and copyright replaced and a device maker added, each a planted string:
    a valid v4 profile lcms converts with (the pixels come through as they were)."""
    base = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    count = struct.unpack(">I", base[128:132])[0]
    tags = []
    for i in range(count):
        sig, off, size = struct.unpack(">4sII", base[132 + 12 * i:144 + 12 * i])
        if sig not in (b"desc", b"cprt"):
            tags.append((sig, base[off:off + size]))
    tags += [(b"desc", _mluc(desc)), (b"cprt", _mluc(cprt)), (b"dmnd", _mluc(dmnd))]
    table_end = 132 + 12 * len(tags)
    data, entries = b"", b""
    for sig, body in tags:
        off = table_end + len(data)
        entries += struct.pack(">4sII", sig, off, len(body))
        data += body + b"\0" * (-len(body) % 4)
    profile = bytearray(base[:128] + struct.pack(">I", len(tags)) + entries + data)
    profile[0:4] = struct.pack(">I", len(profile))
    profile[84:100] = bytes(16)
    return bytes(profile)


def exif(place: str, orientation: int | None = None) -> Image.Exif:
    """EXIF with every text tag, a maker note, a user comment, the owner and serial, and a GPS position."""
    e = Image.Exif()
    for tag, name in ((0x010E, "ImageDescription"), (0x010F, "Make"), (0x0110, "Model"), (0x0131, "Software"),
                      (0x0132, "DateTime"), (0x013B, "Artist"), (0x013C, "HostComputer"), (0x8298, "Copyright")):
        e[tag] = mark(f"{place}-exif-{name}")
    e[0x9C9C] = mark(f"{place}-exif-XPComment").encode("utf-16-le") + b"\0\0"  # Windows: UTF-16
    if orientation:
        e[0x0112] = orientation
    sub = e.get_ifd(0x8769)
    sub[0x927C] = b"MAKERNOTE\0" + mark(f"{place}-exif-MakerNote").encode()
    sub[0x9286] = b"ASCII\0\0\0" + mark(f"{place}-exif-UserComment").encode()
    sub[0xA430] = mark(f"{place}-exif-CameraOwnerName")
    sub[0xA431] = mark(f"{place}-exif-BodySerialNumber")
    gps = e.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 0.0), "W", (0.0, 7.0, 0.0)
    gps[0x1C] = b"ASCII\0\0\0" + mark(f"{place}-gps-GPSAreaInformation").encode()
    return e


EXIF_LABELS = {"EXIF:ImageDescription", "EXIF:Make", "EXIF:Model", "EXIF:Software", "EXIF:DateTime",
               "EXIF:Artist", "EXIF:HostComputer", "EXIF:Copyright", "EXIF:XPComment", "EXIF:ExifOffset",
               "EXIF:MakerNote", "EXIF:UserComment", "EXIF:CameraOwnerName", "EXIF:BodySerialNumber",
               "EXIF:GPSInfo", "GPS:GPSLatitude", "GPS:GPSAreaInformation"}


def exif_marks(place: str) -> list[str]:
    return [mark(f"{place}-exif-{n}") for n in ("ImageDescription", "Make", "Model", "Software", "DateTime",
                                                 "Artist", "HostComputer", "Copyright", "XPComment", "MakerNote",
                                                 "UserComment", "CameraOwnerName", "BodySerialNumber")] + \
        [mark(f"{place}-gps-GPSAreaInformation")]


def picture(size=(96, 64), colour=(186, 124, 98)) -> Image.Image:
    """Skin-coloured, with a darker 'lesion' in the upper left: a rotation shows."""
    img = Image.new("RGB", size, colour)
    img.paste((70, 40, 30), (4, 4, size[0] // 4, size[1] // 4))
    return img


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


# -- the corpus --------------------------------------------------------------------------------------------------
def jpeg_everything() -> Sample:
    """EXIF (every text tag, maker note, GPS, orientation 6), COM, XMP, IPTC in Photoshop APP13, an unknown APP15,
    an ICC profile with a planted description, copyright and maker, and a trailer after the end of the image."""
    p = "jpeg"
    icc = planted_icc(mark(f"{p}-icc-desc"), mark(f"{p}-icc-cprt"), mark(f"{p}-icc-dmnd"))
    buf = io.BytesIO()
    picture().save(buf, "JPEG", quality=90, exif=exif(p, orientation=6), comment=mark(f"{p}-COM"), icc_profile=icc)
    raw = buf.getvalue()
    segments = (_jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp(mark(f"{p}-XMP")))
                + _jpeg_segment(0xED, b"Photoshop 3.0\0" + photoshop([(0x0404, iptc(mark(f"{p}-IPTC-byline"),
                                                                                     mark(f"{p}-IPTC-caption")))]))
                + _jpeg_segment(0xEF, b"VendorX\0" + mark(f"{p}-APP15").encode()))
    raw = raw[:2] + segments + raw[2:] + b"SEFH" + mark(f"{p}-trailer").encode()
    marks = exif_marks(p) + [mark(f"{p}-{k}") for k in ("icc-desc", "icc-cprt", "icc-dmnd", "COM", "XMP",
                                                           "IPTC-byline", "IPTC-caption", "APP15", "trailer")]
    name_mark = mark(f"{p}-filename")
    return Sample(f"Doe_Janina_MRN7731945_{name_mark}.jpg", raw, marks,
                  EXIF_LABELS | {"EXIF:Orientation", "JPEG:COM", "XMP", "IPTC", "ICC", "ICC:desc", "ICC:cprt",
                                 "ICC:dmnd", "JPEG:APP15", "JPEG:data after end of image"},
                  (64, 96), (186, 124, 98), icc=True, name_marks=[name_mark, "MRN7731945"], dark_corner="tr")


def jpeg_comment() -> Sample:
    """The issue's JPEG: a COM segment, upright (so its own quantisation tables are kept)."""
    buf = io.BytesIO()
    picture((80, 60), (150, 100, 80)).save(buf, "JPEG", quality=70, comment=mark("jpegcom-COM"))
    name_mark = mark("jpegcom-filename")
    return Sample(f"{name_mark}.jpeg", buf.getvalue(), [mark("jpegcom-COM")], {"JPEG:COM"}, (80, 60),
                  (150, 100, 80), name_marks=[name_mark], dark_corner="tl")


def png_everything() -> Sample:
    """tEXt, zTXt and iTXt with lowercase and capitalised keys (and a key that is itself a name), XMP in iTXt,
    eXIf, an iCCP whose profile name and text are planted, tIME, a private chunk, a trailer after IEND."""
    p = "png"
    info = PngInfo()
    info.add_text("comment", mark(f"{p}-tEXt-comment"))
    info.add_text("Comment", mark(f"{p}-tEXt-Comment"))
    info.add_text("Author", mark(f"{p}-zTXt-Author"), zip=True)
    info.add_itxt("Description", mark(f"{p}-iTXt-Description"), lang="en", tkey=mark(f"{p}-iTXt-tkey"))
    info.add_itxt("title", mark(f"{p}-iTXt-title"), zip=True)
    info.add_text(mark(f"{p}-tEXt-key"), "a key that is a name")
    info.add_itxt("XML:com.adobe.xmp", xmp(mark(f"{p}-XMP")).decode())
    buf = io.BytesIO()
    picture().save(buf, "PNG", pnginfo=info, exif=exif(p))
    raw = buf.getvalue()
    icc = planted_icc(mark(f"{p}-icc-desc"), mark(f"{p}-icc-cprt"), mark(f"{p}-icc-dmnd"))
    iccp = _png_chunk(b"iCCP", mark(f"{p}-iCCP-name").encode() + b"\0\0" + zlib.compress(icc))
    ihdr_end = 8 + 8 + 13 + 4
    extra = iccp + _png_chunk(b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 10, 15, 0)) + \
        _png_chunk(b"prVt", mark(f"{p}-private-chunk").encode())
    raw = raw[:ihdr_end] + extra + raw[ihdr_end:] + mark(f"{p}-trailer").encode()
    marks = exif_marks(p) + [mark(f"{p}-{k}") for k in (
        "tEXt-comment", "tEXt-Comment", "zTXt-Author", "iTXt-Description", "iTXt-tkey", "iTXt-title", "tEXt-key",
        "XMP", "icc-desc", "icc-cprt", "icc-dmnd", "iCCP-name", "private-chunk", "trailer")]
    name_mark = mark(f"{p}-filename")
    return Sample(f"Doe Janina {name_mark}.png", raw, marks,
                  EXIF_LABELS | {"PNG:tEXt:comment", "PNG:tEXt:Comment", "PNG:zTXt:Author", "PNG:iTXt:Description",
                                 "PNG:iTXt:title", "PNG:tEXt:(other key)", "XMP", "ICC", "ICC:name", "ICC:desc",
                                 "ICC:cprt", "ICC:dmnd", "PNG:tIME", "PNG:prVt", "PNG:data after end of image"},
                  (96, 64), (186, 124, 98), icc=True, name_marks=[name_mark])


class _Tiff:
    """A little-endian TIFF written bottom-up: blobs first, each IFD after the data it points to."""

    def __init__(self):
        self.buf = bytearray(b"II*\0\0\0\0\0")

    def blob(self, data: bytes) -> int:
        if len(self.buf) % 2:
            self.buf += b"\0"
        off = len(self.buf)
        self.buf += data
        return off

    def ifd(self, entries: list[tuple[int, int, int, bytes]], next_ifd: int = 0) -> int:
        rows = []
        for tag, typ, count, data in sorted(entries):
            field = data.ljust(4, b"\0") if len(data) <= 4 else struct.pack("<I", self.blob(data))
            rows.append(struct.pack("<HHI", tag, typ, count) + field)
        return self.blob(struct.pack("<H", len(rows)) + b"".join(rows) + struct.pack("<I", next_ifd))

    def image(self, img: Image.Image, extra: list, next_ifd: int = 0, subfile: int = 0) -> int:
        strip = self.blob(img.tobytes())
        w, h = img.size
        return self.ifd([(254, 4, 1, struct.pack("<I", subfile)), (256, 3, 1, struct.pack("<H", w)),
                         (257, 3, 1, struct.pack("<H", h)), (258, 3, 3, struct.pack("<HHH", 8, 8, 8)),
                         (259, 3, 1, struct.pack("<H", 1)), (262, 3, 1, struct.pack("<H", 2)),
                         (273, 4, 1, struct.pack("<I", strip)), (277, 3, 1, struct.pack("<H", 3)),
                         (278, 3, 1, struct.pack("<H", h)), (279, 4, 1, struct.pack("<I", len(img.tobytes()))),
                         (284, 3, 1, struct.pack("<H", 1)), *extra], next_ifd)

    def done(self, first: int) -> bytes:
        self.buf[4:8] = struct.pack("<I", first)
        return bytes(self.buf)


def _ascii(tag: int, text: str) -> tuple[int, int, int, bytes]:
    data = text.encode() + b"\0"
    return tag, 2, len(data), data


TIFF_TEXT = {270: "ImageDescription", 271: "Make", 272: "Model", 305: "Software", 306: "DateTime", 315: "Artist",
             316: "HostComputer", 33432: "Copyright", 269: "DocumentName", 285: "PageName"}


def tiff_everything() -> Sample:
    """Every text tag of IFD0, XMP (700), IPTC (33723), Photoshop resources (34377), an ICC profile (34675),
    an EXIF IFD and a GPS IFD."""
    p = "tiff"
    t = _Tiff()
    exif_ifd = t.ifd([(0x9286, 7, len(b"ASCII\0\0\0" + mark(f"{p}-exif-UserComment").encode()),
                       b"ASCII\0\0\0" + mark(f"{p}-exif-UserComment").encode()),
                      _ascii(0xA430, mark(f"{p}-exif-CameraOwnerName"))])
    gps_ifd = t.ifd([_ascii(1, "N"), (2, 5, 3, struct.pack("<6I", 51, 1, 30, 1, 0, 1)),
                     _ascii(0x12, mark(f"{p}-gps-GPSMapDatum"))])
    x, i = xmp(mark(f"{p}-XMP")), iptc(mark(f"{p}-IPTC-byline"), mark(f"{p}-IPTC-caption"))
    ps = photoshop([(0x0428, mark(f"{p}-photoshop").encode())])
    icc = planted_icc(mark(f"{p}-icc-desc"), mark(f"{p}-icc-cprt"), mark(f"{p}-icc-dmnd"))
    extra = [_ascii(tag, mark(f"{p}-{name}")) for tag, name in TIFF_TEXT.items()]
    extra += [(700, 1, len(x), x), (33723, 7, len(i), i), (34377, 7, len(ps), ps), (34675, 7, len(icc), icc),
              (34665, 4, 1, struct.pack("<I", exif_ifd)), (34853, 4, 1, struct.pack("<I", gps_ifd))]
    raw = t.done(t.image(picture(), extra))
    marks = [mark(f"{p}-{name}") for name in TIFF_TEXT.values()] + [mark(f"{p}-{k}") for k in (
        "exif-UserComment", "exif-CameraOwnerName", "gps-GPSMapDatum", "XMP", "IPTC-byline", "IPTC-caption",
        "photoshop", "icc-desc", "icc-cprt", "icc-dmnd")]
    name_mark = mark(f"{p}-filename")
    return Sample(f"{name_mark}.tif", raw, marks,
                  {f"TIFF:{n}" for n in TIFF_TEXT.values()} | {"XMP", "IPTC", "Photoshop:0x0428", "ICC", "ICC:desc",
                                                               "ICC:cprt", "ICC:dmnd", "EXIF:ExifOffset",
                                                               "EXIF:UserComment", "EXIF:CameraOwnerName",
                                                               "EXIF:GPSInfo", "GPS:GPSMapDatum"},
                  (96, 64), (186, 124, 98), icc=True, name_marks=[name_mark])


def tiff_dangling() -> Sample:
    """The issue's other TIFF shapes: a GPS pointer into nowhere, orientation 8 in IFD0, and a reduced-resolution
    second page (a preview) whose description is planted: the preview is dropped and reported."""
    p = "tiff2"
    t = _Tiff()
    preview = t.image(picture((24, 16)), [_ascii(270, mark(f"{p}-preview-ImageDescription"))], subfile=1)
    extra = [_ascii(315, mark(f"{p}-Artist")), (274, 3, 1, struct.pack("<H", 8)),
             (34853, 4, 1, struct.pack("<I", 0x7FFFFFF0))]
    raw = t.done(t.image(picture(), extra, next_ifd=preview))
    name_mark = mark(f"{p}-filename")
    return Sample(f"{name_mark}.tiff", raw, [mark(f"{p}-Artist"), mark(f"{p}-preview-ImageDescription")],
                  {"TIFF:Artist", "TIFF:Orientation", "EXIF:GPSInfo", "TIFF:page 2"}, (64, 96), (186, 124, 98),
                  name_marks=[name_mark], dark_corner="bl")


def tiff_two_pages() -> bytes:
    """Two full-size pages: refused (which page would be the image?)."""
    t = _Tiff()
    second = t.image(picture(), [_ascii(270, mark("pages-second"))])
    return t.done(t.image(picture(), [_ascii(270, mark("pages-first"))], next_ifd=second))


def tiff_overlapping(tags: int = 3000, region: int = 4 << 20) -> bytes:
    """A few MB whose tags all point at the same region: decoders that read each tag's value would allocate
    tags × region bytes (12 GB here)."""
    t = _Tiff()
    shared = t.blob(b"A" * region)
    img = picture()
    strip = t.blob(img.tobytes())
    w, h = img.size
    rows = [struct.pack("<HHI", tag, typ, 1) + value.ljust(4, b"\0") for tag, typ, value in (
        (256, 3, struct.pack("<H", w)), (257, 3, struct.pack("<H", h)), (258, 3, struct.pack("<H", 8)),
        (259, 3, struct.pack("<H", 1)), (262, 3, struct.pack("<H", 2)), (273, 4, struct.pack("<I", strip)),
        (277, 3, struct.pack("<H", 3)), (278, 3, struct.pack("<H", h)),
        (279, 4, struct.pack("<I", len(img.tobytes()))), (284, 3, struct.pack("<H", 1)))]
    rows += [struct.pack("<HHII", 40000 + i, 7, region, shared) for i in range(tags)]
    return t.done(t.blob(struct.pack("<H", len(rows)) + b"".join(rows) + struct.pack("<I", 0)))


def webp_everything() -> Sample:
    """EXIF, XMP and ICCP chunks (Pillow writes them) and an unknown chunk (by hand)."""
    p = "webp"
    icc = planted_icc(mark(f"{p}-icc-desc"), mark(f"{p}-icc-cprt"), mark(f"{p}-icc-dmnd"))
    buf = io.BytesIO()
    picture().save(buf, "WEBP", lossless=True, exif=exif(p), xmp=xmp(mark(f"{p}-XMP")), icc_profile=icc)
    raw = buf.getvalue()
    body = mark(f"{p}-unknown-chunk").encode()
    chunk = b"DLpv" + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)
    raw = raw + chunk
    raw = raw[:4] + struct.pack("<I", len(raw) - 8) + raw[8:]
    marks = exif_marks(p) + [mark(f"{p}-{k}") for k in ("XMP", "icc-desc", "icc-cprt", "icc-dmnd", "unknown-chunk")]
    name_mark = mark(f"{p}-filename")
    return Sample(f"{name_mark}.webp", raw, marks,
                  EXIF_LABELS | {"XMP", "ICC", "ICC:desc", "ICC:cprt", "ICC:dmnd", "WebP:DLpv"}, (96, 64),
                  (186, 124, 98), icc=True, name_marks=[name_mark])


def dicom_named() -> Sample:
    """A VL photograph whose file name and patient module carry planted strings (de-identification removes the
    header's; the name must not be kept at all), its pixels a camera's JPEG wrapped whole: EXIF with GPS, XMP and
    a comment inside Pixel Data."""
    p = "dcm"
    ds = pydicom.dcmread(io.BytesIO(vl_photograph(colour=(170, 110, 90))))
    ds.PatientName = mark(f"{p}-PatientName")
    ds.PatientID = mark(f"{p}-PatientID")
    ds.InstitutionName = mark(f"{p}-InstitutionName")
    jpeg = io.BytesIO()
    Image.new("RGB", (320, 240), (170, 110, 90)).save(jpeg, "JPEG", quality=90, exif=exif(p),
                                                       comment=mark(f"{p}-COM"))
    frame = jpeg.getvalue()
    frame = frame[:2] + _jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp(mark(f"{p}-XMP"))) + frame[2:]
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    name_mark = mark(f"{p}-filename")
    return Sample(f"Doe_Janina_{name_mark}.dcm", out.getvalue(),
                  [mark(f"{p}-{k}") for k in ("PatientName", "PatientID", "InstitutionName", "COM", "XMP")]
                  + exif_marks(p),
                  {"DICOM:PatientName (emptied)", "DICOM:Pixel Data EXIF", "DICOM:Pixel Data XMP",
                   "DICOM:Pixel Data JPEG:COM"}, (320, 240), (170, 110, 90), name_marks=[name_mark])


def corpus() -> list[Sample]:
    return [jpeg_everything(), jpeg_comment(), png_everything(), tiff_everything(), tiff_dangling(),
            webp_everything(), dicom_named()]
