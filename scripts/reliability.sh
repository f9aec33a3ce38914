#!/usr/bin/env bash
# `make reliability`: the load, fault and hostile-input suite (tests/reliability) against a throwaway cluster with
# durable settings: an immediate stop of PostgreSQL must not lose a write the client was told about.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export DL_PG_OPTIONS="-c max_connections=200"
source scripts/throwaway_db.sh
export DL_RELIABILITY=1
"$PY" -m pytest -q -s -p no:cacheprovider tests/reliability "$@"
