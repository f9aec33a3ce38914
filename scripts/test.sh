#!/usr/bin/env bash
# `make test`: a throwaway PostgreSQL cluster in a temporary directory, migrated from empty; pg_prove over db/tests,
# then pytest over tests/. The cluster is torn down even when tests fail; any failure makes the exit non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

major=$("$PY" -c 'from app.ops.cluster import pg_bin; print(pg_bin().parent.name)') || exit 2
sharedir=/usr/share/postgresql/$major/extension
# What the tests need from Debian: pgTAP + pg_prove, chromium for the browser tests (Playwright drives it), and
# Orthanc with its DICOMweb plugin for the PACS round trip; Maven and a JDK for the official Flyway engine.
pkgs=""
[[ -f $sharedir/pgtap.control ]] && command -v pg_prove >/dev/null \
    || pkgs="postgresql-$major-pgtap libtap-parser-sourcehandler-pgtap-perl"
[[ -x /usr/bin/chromium ]] || pkgs="$pkgs chromium"
[[ -x /usr/sbin/Orthanc && -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]] || pkgs="$pkgs orthanc orthanc-dicomweb"
# the official Flyway engine (tests/test_flyway_engine.py) is fetched by Maven and compiled with the JDK
command -v mvn >/dev/null && command -v javac >/dev/null || pkgs="$pkgs maven default-jdk-headless"
if [[ -n $pkgs ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing $pkgs"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null || exit 2
    else
        echo "make test needs: sudo apt-get install $pkgs" >&2
        exit 2
    fi
fi

# A throwaway cluster need not survive a crash: trade durability for speed.
export DL_PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
source scripts/throwaway_db.sh
# Every repeatable re-applied alone, as a deploy that changed only that file would: nothing of the catalog may
# disappear or change (the pgTAP suite below then runs against this re-applied database).
echo "== re-apply each repeatable alone"
"$PY" tests/repeatables.py || exit 1
# pgTAP in a schema of its own, callable by every role: tests impersonate roles exactly as the app does.
psql -q -X -v ON_ERROR_STOP=1 "$DATABASE_URL" <<'SQL' || exit 2
CREATE SCHEMA tap;
CREATE EXTENSION pgtap SCHEMA tap;
GRANT USAGE ON SCHEMA tap TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tap TO PUBLIC;
ALTER DATABASE dermlabel SET search_path = "$user", public, tap;
SQL
psql -q -X -v ON_ERROR_STOP=1 "$DATABASE_URL" -f db/test_support/helpers.sql || exit 2

status=0
echo "== pg_prove db/tests"
# TAP=db/tests/x.sql narrows pg_prove to some files; PYTEST=0 skips pytest (for quick loops while developing)
pg_prove -h "$tmp/run" -p "$port" -U postgres -d dermlabel --ext .sql -r ${TAP:-db/tests} || status=1
if [[ ${PYTEST:-1} != 0 ]]; then
    echo "== pytest tests/"
    "$PY" -m pytest -q "$@" || status=1
fi
exit $status
