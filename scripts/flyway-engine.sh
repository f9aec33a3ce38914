#!/usr/bin/env bash
# The official Flyway engine (tools/flyway-engine): fetched from Maven Central and compiled on first use, then run.
# usage: scripts/flyway-engine.sh <repository root> <socket directory> <port> <database> <user> migrate|validate|info
set -euo pipefail
here=$(cd "$(dirname "$0")/../tools/flyway-engine" && pwd)
if [[ ! -f $here/build/FlywayTool.class ]]; then
    mvn -q -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$here/lib" >&2
    mkdir -p "$here/build"
    javac -d "$here/build" -cp "$here/lib/*" "$here/FlywayTool.java" >&2
fi
# Flyway logs to stderr; the tool's facts go to stdout
exec java -cp "$here/build:$here/lib/*" FlywayTool "$@"
