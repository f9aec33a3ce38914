# Sourced by test.sh and bench.sh: a PostgreSQL cluster in a temporary directory, migrated from empty,
# removed on exit. Exports DATABASE_URL, DL_DATA_DIR, DL_PG_PORT; defines $tmp.
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d /tmp/dermlabel-db.XXXXXX)
chmod 711 "$tmp"  # the server (as root: the postgres OS user) must get through; nobody need list it
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DL_DATA_DIR=$tmp DL_PG_PORT=$port
export DL_PG_OPTIONS=${DL_PG_OPTIONS:-"-c max_connections=200"}
teardown() {
    "$PY" -m app cluster stop >/dev/null 2>&1
    rm -rf "$tmp"
}
trap teardown EXIT
trap 'exit 130' INT TERM

"$PY" -m app cluster start || exit 2
export DATABASE_URL="postgresql:///dermlabel?host=$tmp/run&port=$port&user=postgres"
"$PY" - <<'PY' || exit 2
from app import config
from app.ops import cluster
s = config.load()
cluster.ensure_database(lambda db: config.embedded_url(s.cluster.socket_dir, s.cluster.pg_port, db), "dermlabel")
PY
"$PY" -m app migrate || exit 1
