#!/usr/bin/env bash
# Installs what isis needs on a Debian machine; idempotent (skips what is there).
# Usage: scripts/setup.sh [dev|test] [--packages-only]
#   --packages-only  stops after the Debian packages (scripts/test.sh starts the
#                    image builds, which need only those, before the Go modules)
#
# Go is not installed here: put Go 1.26 or newer on PATH first
# (https://go.dev/doc/install). To add a package, add a `want` line below.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-dev}
packages_only=false
[ "${2:-}" != --packages-only ] || packages_only=true
say() { echo "setup: $*"; }

need_go=1.26
if ! command -v go >/dev/null 2>&1; then
	echo "setup: Go $need_go or newer is required (https://go.dev/doc/install); go is not on PATH" >&2
	exit 1
fi
have_go=$(go env GOVERSION) # go1.26.8, go1.27rc1, devel …
have_go=${have_go#go}
case $have_go in devel*) ;; *)
	if [ "$(printf '%s\n%s\n' "$need_go" "${have_go%%[!0-9.]*}" | sort -V | head -n1)" != "$need_go" ]; then
		echo "setup: Go $need_go or newer is required (https://go.dev/doc/install); $(command -v go) is go$have_go" >&2
		exit 1
	fi
esac

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# long WHAT CMD...: runs a slow step, saying what it is and, every 30 s, that
# it is still at it; its own output is shown only when it fails.
long() {
	local what=$1 log ticker rc=0
	shift
	log=$(mktemp)
	say "$what"
	(while sleep 30; do say "  ... still $what"; done) &
	ticker=$!
	"$@" >"$log" 2>&1 || rc=$?
	kill "$ticker" 2>/dev/null || true
	[ "$rc" -eq 0 ] || cat "$log" >&2
	rm -f "$log"
	return "$rc"
}

pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want() { for p in "$@"; do have_pkg "$p" || pkgs+=("$p"); done; }
# want_cmd CMD PKG: PKG, unless CMD is already on PATH (from any package).
want_cmd() { command -v "$1" >/dev/null 2>&1 || want "$2"; }

# PostgreSQL server binaries (tests and the dev server run their own cluster).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then want postgresql; fi
want_cmd psql postgresql-client
want_cmd make make
want_cmd git git
want ca-certificates
if [ "$mode" = test ]; then
	# wrk: load benchmarks. The real SimpleJWT (and Django) for the token interoperability test.
	want_cmd wrk wrk
	want python3-djangorestframework-simplejwt
	# Headless Chromium for the reference-client test (driven by playwright-core from npm).
	want_cmd chromium chromium
	# sshd on loopback for the ssh:// test of isisctl.
	want openssh-server
	# The real reverse proxies, run on loopback with the configs isisctl renders: the client-IP test
	# and the zero-downtime deploy test.
	want nginx-light caddy
	# kubectl builds the kustomization that isisctl render --kube writes (Debian's kubernetes-client).
	command -v kubectl >/dev/null 2>&1 || want kubernetes-client
	# etcd for the real kube-apiserver the manifests are applied to (scripts/kube-apiserver.sh builds it).
	want_cmd etcd etcd-server
	# systemd-analyze verify: the backup timer and service isisctl render writes.
	want systemd
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
	want_cmd node nodejs
	want_cmd npm npm
	# Podman for the isisctl tests (scripts/podman-setup.sh configures and starts it),
	# installed here so that one apt run covers everything.
	want podman runc netavark aardvark-dns debootstrap uidmap slirp4netns iptables curl
fi
if [ ${#pkgs[@]} -gt 0 ]; then
	# Another apt (unattended-upgrades, a second script) may hold the dpkg lock:
	# wait up to 10 minutes for it instead of failing.
	apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
	long "updating apt's package lists" sudo_ "${apt[@]}" update -q
	long "installing ${pkgs[*]} (a few minutes on a fresh machine)" \
		sudo_ env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends "${pkgs[@]}"
fi
# PostgreSQL refuses to run as root: the test harness runs it as this user.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
	useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi
if $packages_only; then
	say "packages ready ($mode)"
	exit 0
fi

# The Go modules: nothing to do when the module cache has them all.
GOPROXY=off GOFLAGS=-mod=mod go mod download >/dev/null 2>&1 ||
	long "downloading the Go modules (a minute or two on a fresh machine)" go mod download

if [ "$mode" = test ]; then
	# A real S3 server for the media and collectstatic tests.
	gobin=$(go env GOPATH)/bin
	if ! go version -m "$gobin/versitygw" 2>/dev/null | grep -q 'versitygw\s*v1.8.0'; then
		long "building versitygw v1.8.0 (an S3 server for the tests: two to four minutes, once)" \
			env GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
	fi
	# playwright-core, pinned by test/browser/package-lock.json (never its own browser download).
	if ! node -e 'const d = "./test/browser/"; process.exit(require(d + "node_modules/playwright-core/package.json").version === require(d + "package.json").dependencies["playwright-core"] ? 0 : 1)' 2>/dev/null; then
		long "installing playwright-core from npm (test/browser)" \
			env -C test/browser PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
	fi
	# The TypeScript client check (openapi-typescript, openapi-fetch, tsc, redocly), pinned by
	# test/tsclient/package-lock.json; reinstalled when an installed version differs from package.json.
	if ! node -e 'const d = "./test/tsclient/", deps = require(d + "package.json").dependencies; process.exit(Object.keys(deps).every((n) => require(d + "node_modules/" + n + "/package.json").version === deps[n]) ? 0 : 1)' 2>/dev/null; then
		echo "setup: installing test/tsclient (npm ci)"
		(cd test/tsclient && npm ci --no-audit --no-fund --silent)
	fi
fi
say "ready ($mode)"
