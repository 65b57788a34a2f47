#!/usr/bin/env bash
# Installs what isis needs on a Debian machine; idempotent (skips what is there).
# Usage: scripts/setup.sh [dev|test]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-dev}

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
	echo "setup: Go $need_go or newer is required (https://go.dev/doc/install); not found on PATH" >&2
	exit 1
fi

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want() { for p in "$@"; do have_pkg "$p" || pkgs+=("$p"); done; }

# PostgreSQL server binaries (tests and the dev server run their own cluster).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then want postgresql; fi
want postgresql-client make git ca-certificates
if [ "$mode" = test ]; then
	# wrk: load benchmarks. The real SimpleJWT (and Django) for the token interoperability test.
	want wrk python3-djangorestframework-simplejwt
fi
if [ ${#pkgs[@]} -gt 0 ]; then
	echo "setup: installing ${pkgs[*]}"
	sudo_ apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
# PostgreSQL refuses to run as root: the test harness runs it as this user.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
	useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi

go mod download
