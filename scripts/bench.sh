#!/usr/bin/env bash
# `make bench`: every bench/*.py against a throwaway cluster with durable settings; each prints its figures, and
# the printed table is appended to bench/RESULTS.md with the date and the machine (bench/_record.py).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export DL_PG_OPTIONS="-c shared_buffers=1GB -c max_connections=300"
source scripts/throwaway_db.sh
status=0
out=$(mktemp)
for script in ${BENCH:-bench/[!_]*.py}; do
    echo "== $script"
    if "$PY" "$script" | tee "$out"; then
        "$PY" bench/_record.py "$script" "$out"
    else
        status=1
    fi
done
rm -f "$out"
exit $status
