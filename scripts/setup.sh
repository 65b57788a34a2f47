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
	# Headless Chromium for the reference-client test (driven by playwright-core from npm).
	want chromium
	# sshd on loopback for the ssh:// test of isisctl.
	want openssh-server
	# The real reverse proxies, run on loopback by the client-IP test with the configs isisctl renders.
	want nginx-light caddy
	# A real image registry (distribution v2) on loopback, with TLS and basic auth, for isisctl build --push.
	want docker-registry
	# podman kube play builds its pause image around catatonit.
	want catatonit
	# A C toolchain for the race detector (make race; the binaries stay CGO-free).
	want gcc libc6-dev
	# The reference Django (../shared/django-reference/run.sh) for the import tests, with the argon2 and
	# bcrypt hashers Django 3.2 lists by default.
	want python3-django python3-djangorestframework python3-djangorestframework-simplejwt python3-django-cors-headers \
		python3-psycopg2 gunicorn postgresql-15 curl python3-argon2 python3-bcrypt
	command -v node >/dev/null 2>&1 || want nodejs npm
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

if [ "$mode" = test ]; then
	# A real S3 server for the media and collectstatic tests.
	gobin=$(go env GOPATH)/bin
	if ! go version -m "$gobin/versitygw" 2>/dev/null | grep -q 'versitygw\s*v1.8.0'; then
		echo "setup: installing versitygw v1.8.0"
		GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	fi
	# playwright-core, pinned by test/browser/package-lock.json (never its own browser download).
	if ! node -e 'const d = "./test/browser/"; process.exit(require(d + "node_modules/playwright-core/package.json").version === require(d + "package.json").dependencies["playwright-core"] ? 0 : 1)' 2>/dev/null; then
		(cd test/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
	fi
	# The TypeScript client check (openapi-typescript, openapi-fetch, tsc, redocly), pinned by
	# test/tsclient/package-lock.json; reinstalled when an installed version differs from package.json.
	if ! node -e 'const d = "./test/tsclient/", deps = require(d + "package.json").dependencies; process.exit(Object.keys(deps).every((n) => require(d + "node_modules/" + n + "/package.json").version === deps[n]) ? 0 : 1)' 2>/dev/null; then
		echo "setup: installing test/tsclient (npm ci)"
		(cd test/tsclient && npm ci --no-audit --no-fund --silent)
	fi
fi
