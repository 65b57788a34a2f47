#!/usr/bin/env bash
# Installs and configures Podman for isis's tests on this machine, builds the
# PostgreSQL test image once (cached), and starts the Podman API service.
# Idempotent. Prints the socket URL (export CONTAINER_HOST=…) on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=()
for p in podman runc netavark aardvark-dns debootstrap uidmap slirp4netns iptables curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
	echo "podman-setup: installing ${pkgs[*]}" >&2
	sudo_ apt-get update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# crun fails on this host's cgroups and limits: runc, and explicit ulimits.
conf=/etc/containers/containers.conf
if ! grep -q 'isis-managed v2' "$conf" 2>/dev/null; then
	sudo_ mkdir -p /etc/containers
	sudo_ tee "$conf" >/dev/null <<'CONF'
# isis-managed v2: written by scripts/podman-setup.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
	# A service started under the old configuration must not keep serving.
	pkill -f "podman system service" 2>/dev/null || true
fi

sock_dir=${ISIS_PODMAN_DIR:-/run/isis-podman}
sock=$sock_dir/podman.sock
sudo_ mkdir -p "$sock_dir"
if ! curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
	rm -f "$sock"
	nohup podman system service --time=0 "unix://$sock" >"$sock_dir/service.log" 2>&1 &
	for _ in $(seq 1 100); do
		curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null || { cat "$sock_dir/service.log" >&2; exit 1; }
fi

# The PostgreSQL image for tests: Debian's postgresql-15 in a debootstrap
# root (built once, cached as the base), plus an entrypoint that speaks the
# official image's interface (a quick, layer-cached build on top).
base=localhost/isis-postgres-base:15
image=${ISIS_PG_TEST_IMAGE:-localhost/isis-postgres-test:15}
if ! podman image exists "$base"; then
	root=$(mktemp -d /var/tmp/isis-pgroot.XXXXXX)
	echo "podman-setup: building $base (debootstrap, about a minute)" >&2
	debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" >"$root.log" 2>&1 ||
		{ tail -20 "$root.log" >&2; exit 1; }
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -c . | podman import - "$base" >/dev/null 2>&1
	rm -rf "$root" "$root.log"
fi
podman build -q -t "$image" -f scripts/podman/Containerfile.postgres scripts/podman >/dev/null
echo "unix://$sock"
