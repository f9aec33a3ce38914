"""Append one bench run's printed table to bench/RESULTS.md, dated, with the machine it ran on.

    python bench/_record.py bench/x.py OUTPUT_FILE     (scripts/bench.sh calls it after each script)
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = ("# Benchmark results\n\nEach `make bench` run appends one entry per script: the date, the machine, and "
          "the table the script printed. Compare ratios within one entry rather than absolute figures across "
          "machines or days.\n")


def machine() -> str:
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    try:
        pg = subprocess.run(["psql", os.environ["DATABASE_URL"], "-XAtc", "SHOW server_version"],
                            capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, KeyError, subprocess.TimeoutExpired):
        pg = "?"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return (f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB, PostgreSQL {pg}, "
            f"Python {platform.python_version()}")


def main(script: str, output: str) -> None:
    text = Path(output).read_text().rstrip()
    if not text:
        return
    if not RESULTS.exists():
        RESULTS.write_text(HEADER)
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    with RESULTS.open("a") as f:
        f.write(f"\n## {when} — `{script}`\n\n{machine()}\n\n```\n{text}\n```\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
