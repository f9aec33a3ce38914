"""COCO run-length encoded masks from elsewhere (a segment service), checked before pycocotools reads them: its C
decoder trusts its input, and a truncated string or runs that add up to more than h·w make it read or write past
its buffers. The rules are docs/segmentation.md's, the ones SQL applies to stored masks."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask

MAX_COUNTS = 200_000  # characters of `counts` SQL stores at most


class BadRle(ValueError):
    pass


def runs(counts: str) -> list[int]:
    """The run lengths of a compressed `counts` string (5 bits a character from chr(48), 0x20 = more follows, 0x10
    of the last group = negative; from the fourth run on, each is a difference to the run two before)."""
    out: list[int] = []
    p, n = 0, len(counts)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise BadRle("counts end in the middle of a number")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise BadRle(f"counts: character {counts[p]!r} is not part of the encoding")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            raise BadRle("counts decode to a negative run")
        out.append(x)
    return out


def decode(rle: object, height: int, width: int) -> np.ndarray:
    """The mask (uint8, h × w) of an RLE that must be {"size": [height, width], "counts": "…"}; BadRle otherwise."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise BadRle('must be {"size": [h, w], "counts": "…"}')
    if rle["size"] != [height, width]:
        raise BadRle(f"size is {rle['size']!r}, the image is [{height}, {width}]")
    counts = rle["counts"]
    if not isinstance(counts, str) or not counts:
        raise BadRle("counts must be a non-empty string")
    if len(counts) > MAX_COUNTS:
        raise BadRle(f"counts longer than {MAX_COUNTS} characters")
    if sum(runs(counts)) != height * width:
        raise BadRle(f"runs do not add up to {height}×{width} pixels")
    return coco_mask.decode({"size": [height, width], "counts": counts.encode()})
