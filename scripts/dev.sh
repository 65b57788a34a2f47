#!/usr/bin/env bash
# Sets up what is missing, starts a local PostgreSQL (no container), migrates,
# and serves the API on 127.0.0.1:3003 until Ctrl-C or SIGTERM, which stop the
# server and the database with it.
#
# Environment (all optional):
#   PORT (3003), ALLOWED_HOSTS, CORS_ALLOWED_ORIGINS: passed to isis
#   DEV_PG_PORT (55432)   the database's port
#   DEV_STATE_DIR (.dev)  the database, the secret key and media live here
#   DEV_SKIP_SETUP=1      skip scripts/setup.sh and make build (bin/isis must exist)
#   ISIS_BIN (bin/isis)   the isis binary to run
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${DEV_SKIP_SETUP:-}" != 1 ]; then
	scripts/setup.sh dev
	echo "dev: building bin/isis"
	make -s build
fi

state=${DEV_STATE_DIR:-.dev}
mkdir -p "$state"
state=$(cd "$state" && pwd)
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
pgport=${DEV_PG_PORT:-55432}
pgdata=$state/pgdata
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chmod 755 "$state"; chown postgres: "$state"; fi

server=
stop() {
	trap - EXIT INT TERM
	if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
		kill -TERM "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true # isis finishes in-flight requests, then exits
	fi
	as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true
	echo "dev: stopped"
}
trap stop EXIT
trap 'stop; exit 143' TERM
trap 'stop; exit 130' INT

if [ ! -s "$pgdata/PG_VERSION" ]; then
	echo "dev: creating the database cluster in $pgdata"
	as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_pg "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
	as_pg "$pgbin/pg_ctl" -D "$pgdata" -w -l "$pgdata/server.log" \
		-o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
fi
psql -h 127.0.0.1 -p "$pgport" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='isis'" | grep -q 1 ||
	psql -h 127.0.0.1 -p "$pgport" -U postgres -qc "CREATE DATABASE isis"

[ -s "$state/secret_key" ] || head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$state/secret_key"
export SECRET_KEY_FILE=$state/secret_key
export DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/isis?sslmode=disable"
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1}
export LISTEN_ADDRESS=${LISTEN_ADDRESS:-127.0.0.1}
export PORT=${PORT:-3003}
# The usual front-end dev servers: Vite (5173), Create React App / Next.js (3000).
export CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://localhost:5173,http://127.0.0.1:5173,http://localhost:3000,http://127.0.0.1:3000}
export MEDIA_ROOT=${MEDIA_ROOT:-$state/media}
# Relaxed throttles: a developer registers and signs in far more often than a user.
export THROTTLE_TOKEN=${THROTTLE_TOKEN:-1000/min} THROTTLE_REGISTER=${THROTTLE_REGISTER:-1000/hour} THROTTLE_GOOGLE=${THROTTLE_GOOGLE:-1000/min}

isis=${ISIS_BIN:-bin/isis}
"$isis" migrate
"$isis" serve &
server=$!
for _ in $(seq 1 100); do
	"$isis" healthcheck >/dev/null 2>&1 && break
	kill -0 "$server" 2>/dev/null || exit 1
	sleep 0.1
done
base=http://localhost:$PORT
cat <<EOF
dev: isis is up
  API            $base/api/
  API docs       $base/static/docs/   (the OpenAPI document: $base/api/schema/)
  Host names     $ALLOWED_HOSTS   (add one: ALLOWED_HOSTS=localhost,127.0.0.1,myhost scripts/dev.sh)
  CORS origins   ${CORS_ALLOWED_ORIGINS//,/ }
                 (add yours: CORS_ALLOWED_ORIGINS=http://localhost:5173,http://localhost:4200 scripts/dev.sh;
                 the list replaces the default)
  Throttles      token $THROTTLE_TOKEN, register $THROTTLE_REGISTER, google $THROTTLE_GOOGLE (relaxed for development)
  Database       $DATABASE_URL
Ctrl-C stops the server and the database; the server's JSON log follows.
EOF
wait "$server"
