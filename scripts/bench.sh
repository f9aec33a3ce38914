#!/usr/bin/env bash
# `make bench`: every bench/*.py against a throwaway cluster with durable settings; each prints its figures.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export DL_PG_OPTIONS="-c shared_buffers=1GB -c max_connections=200"
source scripts/throwaway_db.sh
status=0
for script in ${BENCH:-bench/*.py}; do
    echo "== $script"
    "$PY" "$script" || status=1
done
exit $status
