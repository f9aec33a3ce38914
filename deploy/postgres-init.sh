#!/bin/sh
# Runs once when the postgres container initialises its volume: the login role the app uses, with its password.
# Flyway then creates the group roles and grants them to it (V1 only creates roles that are absent).
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$DL_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE dl_authenticator LOGIN NOINHERIT PASSWORD :'pw';
SQL
