#!/usr/bin/env bash
# Sets up what is missing, starts a local PostgreSQL (no container), migrates,
# and serves the API on 127.0.0.1:3003 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
make build

state=.dev
mkdir -p "$state"
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
pgport=${DEV_PG_PORT:-55432}
pgdata=$state/pgdata
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chmod 755 "$state"; chown postgres: "$state"; fi
if [ ! -s "$pgdata/PG_VERSION" ]; then
	as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_pg "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
	as_pg "$pgbin/pg_ctl" -D "$pgdata" -w -l "$pgdata/server.log" \
		-o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
fi
trap 'as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true' EXIT
psql -h 127.0.0.1 -p "$pgport" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='isis'" | grep -q 1 ||
	psql -h 127.0.0.1 -p "$pgport" -U postgres -qc "CREATE DATABASE isis"

[ -s "$state/secret_key" ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$state/secret_key"
export SECRET_KEY_FILE=$PWD/$state/secret_key
export DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/isis?sslmode=disable"
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1}
export LISTEN_ADDRESS=${LISTEN_ADDRESS:-127.0.0.1}
export PORT=${PORT:-3003}
export CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://localhost:5173}
export MEDIA_ROOT=${MEDIA_ROOT:-$PWD/$state/media}

bin/isis migrate
echo "isis: serving on http://127.0.0.1:$PORT/api/ (Ctrl-C stops it and the database)"
bin/isis serve
