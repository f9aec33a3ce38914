"""What metadata a file's bytes carry, found by walking the container itself: JPEG markers, PNG chunks, TIFF IFDs
(and the TIFF inside EXIF), RIFF chunks of WebP, Photoshop resource blocks and ICC tag tables. Pillow's `info` shows
only what Pillow understands; this reads every block, so what an upload had and what a stored file still has are
both known from the bytes.

A block is a label (a tag or block name from a fixed vocabulary, never a value from the file: a PNG text key or an
APPn identifier may itself be a patient's name) and its payload (decompressed where the format compresses it), to
compare an input's blocks with an output's and to search. Pixel-structure (dimensions, tables, strips, palettes,
transparency) is not metadata and is not listed. Damage is listed too ('…:unparsed data'), never raised."""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from PIL import ExifTags


@dataclass(frozen=True)
class Block:
    label: str
    payload: bytes


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT = 8 << 20  # compressed PNG chunks are decompressed this far in all, no further (zip bombs are not read)
MAX_IFDS = 64
MAX_ENTRIES = 4096
# the label of a structure no camera or editor writes: tag values overlapping far beyond the file's size, IFDs of
# more than MAX_ENTRIES tags, chains beyond MAX_IFDS. Decoders read every copy (gigabytes from a few MB): such an
# upload is refused before any decoder sees it.
CRAFTED = "crafted structure"

# -- TIFF --------------------------------------------------------------------------------------------------------
# Tags that describe how the pixels are laid out (a TIFF file's own IFD0); everything else in an IFD is metadata.
TIFF_STRUCTURE = {
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 282, 283, 284, 290, 291,
    296, 301, 317, 318, 319, 320, 321, 322, 323, 324, 325, 332, 334, 336, 338, 339, 340, 341, 342, 347,
    512, 513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532,
}
EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS = 34665, 34853, 40965, 330
XMP_TAG, IPTC_TAG, PHOTOSHOP_TAG, ICC_TAG = 700, 33723, 34377, 34675
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
NAMES = {**ExifTags.TAGS, EXIF_IFD: "ExifOffset", GPS_IFD: "GPSInfo", INTEROP_IFD: "InteropOffset"}


def _name(tag: int, table: dict = NAMES) -> str:
    return table.get(tag) or f"tag {tag}"


class _Tiff:
    """One TIFF structure (a TIFF file, or the payload of an EXIF block): header, IFDs, entries, values."""

    def __init__(self, data: bytes):
        if len(data) < 8 or data[:2] not in (b"II", b"MM"):
            raise ValueError("no TIFF header")
        self.data, self.e = data, "<" if data[:2] == b"II" else ">"
        # values may point anywhere, overlapping at will: what is copied into payloads is bounded by the file's
        # size (twice over), so that a few KB of crafted IFDs cannot make gigabytes of payload
        self.budget = 2 * len(data) + (1 << 20)
        self.overdrawn = False  # a file that asks for more is crafted (Pillow would read every copy)
        magic = struct.unpack(self.e + "H", data[2:4])[0]
        if magic == 42:
            self.big, self.first = False, struct.unpack(self.e + "I", data[4:8])[0]
        elif magic == 43 and len(data) >= 16:
            self.big, self.first = True, struct.unpack(self.e + "Q", data[8:16])[0]
        else:
            raise ValueError("no TIFF magic")

    def slice(self, start: int, size: int) -> bytes:
        """data[start:start + size] within the copy budget; b"" outside the file (a dangling pointer)."""
        if start < 0 or start + size > len(self.data):
            return b""
        if size > self.budget:
            self.overdrawn = True
        size = min(size, max(0, self.budget))
        self.budget -= size
        return self.data[start:start + size]

    def ifd(self, offset: int) -> tuple[list[tuple[int, int, int, bytes, int]], int] | None:
        """[(tag, type, count, value bytes, first value as a number)], next IFD offset; None when out of bounds."""
        d, e = self.data, self.e
        head, entry, off_fmt, off_size = (8, 20, "Q", 8) if self.big else (2, 12, "I", 4)
        if offset < 8 or offset + head > len(d):
            return None
        count = struct.unpack(e + ("Q" if self.big else "H"), d[offset:offset + head])[0]
        if count > MAX_ENTRIES:
            self.overdrawn = True
            return None
        if offset + head + count * entry + off_size > len(d):
            return None
        out = []
        for i in range(count):
            p = offset + head + i * entry
            tag, typ = struct.unpack(e + "HH", d[p:p + 4])
            n = struct.unpack(e + ("Q" if self.big else "I"), d[p + 4:p + 4 + off_size])[0]
            field = d[p + 4 + off_size:p + entry]
            size = TYPE_SIZES.get(typ, 1) * n
            if size <= off_size:
                value = field[:size]
            else:
                value = self.slice(struct.unpack(e + off_fmt, field)[0], size)  # b"": dangling, the entry remains
            fmt = {3: "H", 8: "H", 4: "I", 9: "I", 13: "I", 16: "Q", 17: "Q", 18: "Q"}.get(typ)
            first = struct.unpack(e + fmt, value[:struct.calcsize(fmt)])[0] \
                if fmt and len(value) >= struct.calcsize(fmt) else 0
            out.append((tag, typ, n, value, first))
        nxt = struct.unpack(e + off_fmt, d[offset + head + count * entry:offset + head + count * entry + off_size])[0]
        return out, nxt


def _sub_ifd(t: _Tiff, offset: int, prefix: str, table: dict, seen: set[int], blocks: list[Block]) -> None:
    """The tags of an EXIF, GPS or interoperability IFD, each a block."""
    if offset in seen:
        return
    seen.add(offset)
    got = t.ifd(offset)
    if got is None:
        return
    for tag, typ, n, value, first in got[0]:
        if prefix == "EXIF" and tag == INTEROP_IFD:
            blocks.append(Block("EXIF:InteropOffset", value))
            _sub_ifd(t, first, "EXIF:Interop", {}, seen, blocks)
            continue
        blocks.append(Block(f"{prefix}:{_name(tag, table)}" if table else prefix, value))


def _ifd0_tag(t: _Tiff, tag: int, typ: int, value: bytes, first: int, prefix: str, seen: set[int],
              blocks: list[Block]) -> None:
    """A tag of IFD0 that is not pixel structure."""
    if tag == EXIF_IFD:
        blocks.append(Block("EXIF:ExifOffset", value))
        _sub_ifd(t, first, "EXIF", NAMES, seen, blocks)
    elif tag == GPS_IFD:
        blocks.append(Block("EXIF:GPSInfo", value))
        _sub_ifd(t, first, "GPS", ExifTags.GPSTAGS, seen, blocks)
    elif tag == INTEROP_IFD:
        blocks.append(Block("EXIF:InteropOffset", value))
        _sub_ifd(t, first, "EXIF:Interop", {}, seen, blocks)
    elif tag == XMP_TAG:
        blocks.append(Block("XMP", value))
    elif tag == IPTC_TAG:
        blocks.append(Block("IPTC", value))
    elif tag == PHOTOSHOP_TAG:
        blocks.extend(photoshop_blocks(value))
    elif tag == ICC_TAG:
        blocks.extend(icc_blocks(value))
    elif tag == SUB_IFDS:
        blocks.append(Block(f"{prefix}:SubIFDs", value))
    else:
        blocks.append(Block(f"{prefix}:{_name(tag)}", value))


def exif_blocks(data: bytes) -> list[Block]:
    """The TIFF structure inside an EXIF block (JPEG APP1, PNG eXIf, WebP EXIF): every tag is metadata; IFD1 is the
    embedded thumbnail."""
    try:
        t = _Tiff(data)
    except (ValueError, struct.error):
        return [Block("EXIF:unparsed data", data)]
    blocks: list[Block] = []
    seen: set[int] = set()
    try:
        got = t.ifd(t.first)
        if got is None:
            return [Block("EXIF:unparsed data", data)]
        seen.add(t.first)
        for tag, typ, n, value, first in got[0]:
            _ifd0_tag(t, tag, typ, value, first, "EXIF", seen, blocks)
        nxt, count = got[1], 0
        while nxt and nxt not in seen:  # IFD1: the thumbnail, and anything chained after it
            if count >= MAX_IFDS:
                blocks.append(Block(f"EXIF:{CRAFTED}", b"too many IFDs"))
                break
            seen.add(nxt)
            count += 1
            more = t.ifd(nxt)
            if more is None:
                blocks.append(Block("EXIF:unparsed data", b""))
                break
            tags = {tag: first for tag, _, _, _, first in more[0]}
            thumb = t.slice(tags[513], tags.get(514, 0)) if 513 in tags else b""
            blocks.append(Block("EXIF:thumbnail", b"\0".join([*(v for *_, v, _ in more[0]), thumb])))
            nxt = more[1]
    except struct.error:
        blocks.append(Block("EXIF:unparsed data", b""))
    if t.overdrawn:
        blocks.append(Block(f"EXIF:{CRAFTED}", b"values overlap"))
    return blocks


def tiff_blocks(data: bytes) -> list[Block]:
    """A TIFF file: IFD0's tags beyond pixel structure, its EXIF/GPS/XMP/IPTC/ICC, and every further page."""
    try:
        t = _Tiff(data)
    except (ValueError, struct.error):
        return [Block("TIFF:unparsed data", b"")]
    blocks: list[Block] = []
    seen: set[int] = set()
    try:
        got = t.ifd(t.first)
        if got is None:
            return [Block("TIFF:unparsed data", b"")]
        seen.add(t.first)
        for tag, typ, n, value, first in got[0]:
            if tag not in TIFF_STRUCTURE:
                _ifd0_tag(t, tag, typ, value, first, "TIFF", seen, blocks)
        nxt, page = got[1], 1
        while nxt:
            if page >= MAX_IFDS:
                blocks.append(Block(f"TIFF:{CRAFTED}", b"too many pages"))
                break
            if nxt in seen:
                blocks.append(Block("TIFF:unparsed data", b"IFD loop"))
                break
            seen.add(nxt)
            more = t.ifd(nxt)
            if more is None:
                blocks.append(Block("TIFF:unparsed data", b"dangling IFD"))
                break
            page += 1
            blocks.append(Block(f"TIFF:page {page}", b"\0".join(v for *_, v, _ in more[0])))
            nxt = more[1]
    except struct.error:
        blocks.append(Block("TIFF:unparsed data", b""))
    if t.overdrawn:
        blocks.append(Block(f"TIFF:{CRAFTED}", b"values overlap"))
    return blocks


# -- ICC and Photoshop ---------------------------------------------------------------------------------------------
ICC_TEXT_TYPES = {b"desc", b"text", b"mluc", b"dict", b"utf8", b"utf6", b"zut8"}
ICC_TEXT_TAGS = {b"desc", b"cprt", b"dmnd", b"dmdd", b"vued", b"targ", b"meta", b"scrd", b"ciis", b"tech"}
_SIG = re.compile(rb"^[A-Za-z0-9 ]{4}$")


def icc_blocks(profile: bytes) -> list[Block]:
    """An ICC profile, and each of its text tags (description, copyright, device maker and model, viewing
    conditions, target, metadata dictionary) as a block of its own."""
    blocks = [Block("ICC", profile)]
    if len(profile) < 132:
        return blocks + [Block("ICC:unparsed data", b"")]
    count = struct.unpack(">I", profile[128:132])[0]
    if count > 1024 or 132 + 12 * count > len(profile):
        return blocks + [Block("ICC:unparsed data", b"")]
    budget = len(profile)  # tags may overlap: what is copied stays bounded by the profile's size
    for i in range(count):
        sig, off, size = struct.unpack(">4sII", profile[132 + 12 * i:144 + 12 * i])
        size = min(size, budget) if off + size <= len(profile) else 0
        budget -= size
        tag = profile[off:off + size]
        if sig in ICC_TEXT_TAGS or tag[:4] in ICC_TEXT_TYPES:
            name = sig.decode("ascii").strip() if _SIG.match(sig) else "tag"
            blocks.append(Block(f"ICC:{name}", tag))
    return blocks


def photoshop_blocks(data: bytes) -> list[Block]:
    """Photoshop image resource blocks (JPEG APP13, TIFF tag 34377): IPTC-IIM (0x0404), XMP, EXIF, ICC, thumbnails
    and the rest by number."""
    blocks, p = [], 0
    while p + 12 <= len(data):
        if data[p:p + 4] not in (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa"):
            return blocks + [Block("Photoshop:unparsed data", data[p:])]
        rid = struct.unpack(">H", data[p + 4:p + 6])[0]
        nlen = data[p + 6]
        name_end = p + 7 + nlen + ((nlen + 1) % 2)  # the Pascal name, padded to even
        if name_end + 4 > len(data):
            return blocks + [Block("Photoshop:unparsed data", data[p:])]
        size = struct.unpack(">I", data[name_end:name_end + 4])[0]
        body = data[name_end + 4:name_end + 4 + size]
        name = data[p + 7:p + 7 + nlen]
        if rid == 0x0404:
            blocks.append(Block("IPTC", name + body))
        elif rid == 0x0424:
            blocks.append(Block("XMP", name + body))
        elif rid in (0x0422, 0x0423):
            blocks.extend(exif_blocks(body))
        elif rid == 0x040F:
            blocks.extend(icc_blocks(body))
        elif rid in (0x0409, 0x040C):
            blocks.append(Block("Photoshop:thumbnail", name + body))
        else:
            blocks.append(Block(f"Photoshop:0x{rid:04X}", name + body))
        p = name_end + 4 + size + (size % 2)
    if p < len(data) and data[p:].strip(b"\0"):
        blocks.append(Block("Photoshop:unparsed data", data[p:]))
    return blocks


# -- JPEG --------------------------------------------------------------------------------------------------------
_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")  # the end of entropy-coded data
XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
XMP_EXT_ID = b"http://ns.adobe.com/xmp/extension/\0"


def jpeg_blocks(data: bytes) -> list[Block]:
    blocks: list[Block] = []
    icc: dict[int, bytes] = {}
    p, n = 2, len(data)
    while True:
        if p >= n:
            blocks.append(Block("JPEG:unparsed data", b"no end of image"))
            break
        if data[p] != 0xFF:
            blocks.append(Block("JPEG:unparsed data", data[p:]))
            break
        while p + 1 < n and data[p + 1] == 0xFF:  # fill bytes
            p += 1
        if p + 1 >= n:
            blocks.append(Block("JPEG:unparsed data", b"no end of image"))
            break
        m = data[p + 1]
        if m == 0xD9:  # EOI
            rest = data[p + 2:]
            if rest.strip(b"\0"):  # MPO images, Motion Photo videos, vendor trailers
                blocks.append(Block("JPEG:data after end of image", rest))
            break
        if 0xD0 <= m <= 0xD7 or m == 0x01:
            p += 2
            continue
        if p + 4 > n:
            blocks.append(Block("JPEG:unparsed data", data[p:]))
            break
        length = struct.unpack(">H", data[p + 2:p + 4])[0]
        if length < 2 or p + 2 + length > n:
            blocks.append(Block("JPEG:unparsed data", data[p:]))
            break
        body = data[p + 4:p + 2 + length]
        p += 2 + length
        if m == 0xDA:  # SOS: entropy-coded data runs to the next marker that is not a restart
            found = _NEXT_MARKER.search(data, p)
            p = found.start() if found else n
            continue
        if m == 0xFE:
            blocks.append(Block("JPEG:COM", body))
        elif m == 0xE0:
            if body.startswith(b"JFIF\0"):
                if len(body) >= 14 and body[12] and body[13]:
                    blocks.append(Block("JFIF:thumbnail", body[14:]))
            elif body.startswith(b"JFXX\0"):
                blocks.append(Block("JFXX:thumbnail", body))
            else:
                blocks.append(Block("JPEG:APP0", body))
        elif m == 0xE1:
            if body.startswith(b"Exif\0"):
                blocks.extend(exif_blocks(body[6:]))
            elif body.startswith(XMP_ID):
                blocks.append(Block("XMP", body[len(XMP_ID):]))
            elif body.startswith(XMP_EXT_ID):
                blocks.append(Block("XMP", body[len(XMP_EXT_ID) + 40:]))
            else:
                blocks.append(Block("JPEG:APP1", body))
        elif m == 0xE2 and body.startswith(b"ICC_PROFILE\0") and len(body) >= 14:
            icc[body[12]] = body[14:]
        elif m == 0xE2 and body.startswith(b"MPF\0"):
            blocks.append(Block("JPEG:MPF", body))
        elif m == 0xED and body.startswith(b"Photoshop 3.0\0"):
            blocks.extend(photoshop_blocks(body[14:]))
        elif m == 0xEE and body.startswith(b"Adobe"):
            pass  # the colour transform flag: pixel structure
        elif 0xE0 <= m <= 0xEF:
            blocks.append(Block(f"JPEG:APP{m - 0xE0}", body))
        elif m in (0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDE, 0xDF) or 0xC0 <= m <= 0xCF or 0xF0 <= m <= 0xFD:
            pass  # tables, frame headers, restart interval, JPEG extensions: pixel structure
        else:
            blocks.append(Block("JPEG:unparsed data", body))
            break
    if icc:
        blocks.extend(icc_blocks(b"".join(icc[k] for k in sorted(icc))))
    return blocks


# -- PNG ---------------------------------------------------------------------------------------------------------
PNG_STRUCTURE = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"}
# registered keywords (PNG spec 11.3.4.2) and those ImageMagick, Photoshop and exiftool write: named in the report;
# any other key is free text (it could be a name) and is reported without it
PNG_KEYS = {"title", "author", "description", "copyright", "creation time", "software", "disclaimer", "warning",
            "source", "comment", "xml:com.adobe.xmp", "raw profile type exif", "raw profile type iptc",
            "raw profile type xmp", "raw profile type app1", "raw profile type 8bim", "raw profile type icc",
            "date:create", "date:modify", "date:timestamp", "exif:datetime", "signature", "label", "make", "model",
            "artist", "document name", "url", "collection", "keywords"}


class _Inflater:
    """zlib for one file's chunks, within MAX_TEXT decompressed bytes in all (past it, payloads stay compressed)."""

    def __init__(self):
        self.left = MAX_TEXT

    def __call__(self, data: bytes) -> bytes:
        if self.left <= 0:
            return data
        try:
            out = zlib.decompressobj().decompress(data, self.left)
        except zlib.error:
            return data
        self.left -= len(out)
        return out


def _png_text(kind: bytes, body: bytes, inflate: _Inflater) -> Block:
    key, _, rest = body.partition(b"\0")
    if kind == b"zTXt":
        text = inflate(rest[1:])
    elif kind == b"iTXt":
        compressed = rest[:1] == b"\x01"
        lang, _, rest2 = rest[2:].partition(b"\0")
        translated, _, text = rest2.partition(b"\0")
        text = lang + b"\0" + translated + b"\0" + (inflate(text) if compressed else text)
    else:
        text = rest
    name = key.decode("latin-1")
    if name == "XML:com.adobe.xmp":
        return Block("XMP", key + b"\0" + text)
    label = name if name.lower() in PNG_KEYS else "(other key)"
    return Block(f"PNG:{kind.decode()}:{label}", key + b"\0" + text)


def png_blocks(data: bytes) -> list[Block]:
    blocks: list[Block] = []
    p, n = len(PNG_SIGNATURE), len(data)
    inflate = _Inflater()
    while True:
        if p + 8 > n:
            blocks.append(Block("PNG:unparsed data", data[p:]))
            break
        length, kind = struct.unpack(">I4s", data[p:p + 8])
        if p + 12 + length > n:
            blocks.append(Block("PNG:unparsed data", data[p:]))
            break
        body = data[p + 8:p + 8 + length]
        p += 12 + length
        if kind == b"IEND":
            if data[p:].strip(b"\0"):
                blocks.append(Block("PNG:data after end of image", data[p:]))
            break
        if kind in PNG_STRUCTURE:
            continue
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            blocks.append(_png_text(kind, body, inflate))
        elif kind == b"eXIf":
            blocks.extend(exif_blocks(body))
        elif kind == b"iCCP":
            name, _, rest = body.partition(b"\0")
            blocks.append(Block("ICC:name", name))
            blocks.extend(icc_blocks(inflate(rest[1:])))
        else:
            label = kind.decode("ascii") if kind.isalpha() else "chunk"
            blocks.append(Block(f"PNG:{label}", body))
    return blocks


# -- WebP --------------------------------------------------------------------------------------------------------
WEBP_STRUCTURE = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


def webp_blocks(data: bytes) -> list[Block]:
    blocks: list[Block] = []
    end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    p = 12
    while p < end:
        if p + 8 > end:
            blocks.append(Block("WebP:unparsed data", data[p:end]))
            break
        kind, size = struct.unpack("<4sI", data[p:p + 8])
        if p + 8 + size > end:
            blocks.append(Block("WebP:unparsed data", data[p:end]))
            break
        body = data[p + 8:p + 8 + size]
        p += 8 + size + (size % 2)
        if kind in WEBP_STRUCTURE:
            continue
        if kind == b"EXIF":
            blocks.extend(exif_blocks(body[6:] if body.startswith(b"Exif\0") else body))
        elif kind == b"XMP ":
            blocks.append(Block("XMP", body))
        elif kind == b"ICCP":
            blocks.extend(icc_blocks(body))
        elif kind in (b"ANIM", b"ANMF"):
            blocks.append(Block("WebP:animation", body))
        else:
            label = kind.decode("ascii").strip() if _SIG.match(kind) else "chunk"
            blocks.append(Block(f"WebP:{label}", body))
    if data[end:].strip(b"\0"):
        blocks.append(Block("WebP:data after end of image", data[end:]))
    return blocks


def scan(data: bytes) -> list[Block]:
    """Every metadata block of a JPEG, PNG, TIFF or WebP file; ValueError for any other kind of file."""
    if data[:3] == b"\xff\xd8\xff":
        return jpeg_blocks(data)
    if data.startswith(PNG_SIGNATURE):
        return png_blocks(data)
    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return tiff_blocks(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 12:
        return webp_blocks(data)
    raise ValueError("not a JPEG, PNG, TIFF or WebP file")


def labels(blocks: list[Block]) -> list[str]:
    return sorted({b.label for b in blocks})


def removed(before: list[Block], after: list[Block]) -> list[str]:
    """What an input had that its output no longer has: a block counts as kept only with the same payload (an ICC
    profile replaced by another is the original's profile removed)."""
    kept = {(b.label, b.payload) for b in after}
    return sorted({b.label for b in before if (b.label, b.payload) not in kept})
