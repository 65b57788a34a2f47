#!/usr/bin/env bash
# Installs and configures Podman for isis's tests, starts a Podman API service
# and gives it the PostgreSQL test image. Idempotent. Prints the socket URL
# (export CONTAINER_HOST=…) on its last line.
#
#   ISIS_PODMAN_DIR      the service's own directory: podman.sock, service.pid,
#                        service.log (default /run/isis-podman)
#   ISIS_PODMAN_STORAGE  give the service a storage of its own (images,
#                        containers, volumes) under this directory instead of
#                        the host's; scripts/test.sh uses one so that nothing
#                        the tests make reaches the host's Podman
#
# The service keeps running; stop it (and only it) with
#   kill "$(cat "$ISIS_PODMAN_DIR/service.pid")"
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "podman-setup: $*" >&2; }

pkgs=()
for p in podman runc netavark aardvark-dns debootstrap uidmap slirp4netns iptables curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
	say "installing ${pkgs[*]}"
	# Wait (up to 10 minutes) for another apt to finish instead of failing.
	sudo_ apt-get -o DPkg::Lock::Timeout=600 update -qq
	sudo_ env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${pkgs[@]}" >/dev/null
fi

sock_dir=${ISIS_PODMAN_DIR:-/run/isis-podman}
sock=$sock_dir/podman.sock
pidfile=$sock_dir/service.pid
storage=${ISIS_PODMAN_STORAGE:-}
sudo_ mkdir -p "$sock_dir"

# Our service: the pid in the pid file, if that process is still a Podman
# service. Nothing else is ever stopped.
our_pid() {
	local pid
	pid=$(cat "$pidfile" 2>/dev/null) || return 1
	[ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^podman .*system service' && echo "$pid"
}

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
	# A service this script started under the old configuration must not keep
	# serving; any other Podman service is left alone.
	if pid=$(our_pid); then
		say "restarting the service $pid under the new configuration"
		kill "$pid" && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
fi

ping() { curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }
if ! ping; then
	rm -f "$sock"
	store=()
	if [ -n "$storage" ]; then
		mkdir -p "$storage"
		# Networks stay in the host's configuration: a second configuration would
		# hand out the same bridge names and subnets as the host's.
		store=(--root "$storage/root" --runroot "$storage/run" --tmpdir "$storage/tmp")
	fi
	nohup podman "${store[@]}" system service --time=0 "unix://$sock" >"$sock_dir/service.log" 2>&1 &
	echo $! >"$pidfile"
	for _ in $(seq 1 100); do
		ping && break
		sleep 0.1
	done
	ping || { cat "$sock_dir/service.log" >&2; exit 1; }
fi
pm() { podman --url "unix://$sock" "$@"; }

# The PostgreSQL image for tests: Debian's postgresql-15 in a debootstrap root
# (built once: a cache, labelled io.isis.cache), plus an entrypoint that speaks
# the official image's interface (a quick, layer-cached build on top, labelled
# too).
base=localhost/isis-postgres-base:15
image=${ISIS_PG_TEST_IMAGE:-localhost/isis-postgres-test:15}
if ! pm image exists "$base"; then
	root=$(mktemp -d /var/tmp/isis-pgroot.XXXXXX)
	trap 'rm -rf "$root" "$root.log" "$root.tar"' EXIT
	say "building $base (debootstrap of Debian's postgresql-15: about two minutes, once)"
	debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" >"$root.log" 2>&1 ||
		{ tail -20 "$root.log" >&2; exit 1; }
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -cf "$root.tar" .
	pm import --change 'LABEL io.isis.cache=postgres-base' "$root.tar" "$base" >/dev/null
fi
pm build -q -t "$image" -f scripts/podman/Containerfile.postgres scripts/podman >/dev/null
echo "unix://$sock"
