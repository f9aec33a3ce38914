"""DICOM intake cost per file, in the app process (no database): read, de-identify (PS3.15 Basic Profile), write,
decode frame 1 and render it to PNG plus thumbnail; and serving one frame's values to the viewer.

    BENCH=bench/dicom_intake.py make bench
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dicom_files import bundled, vl_photograph  # noqa: E402

from app.dicom.deid import Key  # noqa: E402
from app.dicom.intake import clean_dicom, frame_payload  # noqa: E402

KEY = Key("bench-secret-0123456789abcdef0123456789", -400)
RUNS = 30


def timed(fn) -> tuple[float, float]:
    xs = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return statistics.median(xs), xs[int(0.95 * len(xs)) - 1]


def main() -> None:
    files = {
        "CT 512x512 JPEG 2000": bundled("693_J2KI.dcm"),
        "CT 128x128 uncompressed": bundled("CT_small.dcm"),
        "US 30 frames JPEG": bundled("examples_ybr_color.dcm"),
        "VL photo 1024x768 JPEG": vl_photograph(size=(1024, 768), texture=True),
        "VL photo 4000x3000 JPEG": vl_photograph(size=(4000, 3000), texture=True),
    }
    print(f"{'file':26} {'size':>9} {'intake p50':>11} {'p95':>8} {'frame p50':>10}")
    for name, raw in files.items():
        intake = timed(lambda: clean_dicom(raw, 1 << 30, KEY))
        stored = clean_dicom(raw, 1 << 30, KEY).dicom
        frame = timed(lambda: frame_payload(stored, 0))
        print(f"{name:26} {len(raw) / 1024:7.0f} KB {intake[0]:8.1f} ms {intake[1]:5.1f} ms {frame[0]:7.1f} ms")


if __name__ == "__main__":
    main()
