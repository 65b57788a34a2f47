#!/usr/bin/env bash
# Builds the image the systemd end-to-end test boots (cmd/isisctl/systemd_test.go):
# Debian trixie with systemd as PID 1 and Podman 5 inside (bookworm's Podman 4.3
# ships no quadlet generator), a user `isis` with lingering and subordinate ids,
# podman.socket enabled for root and for every user, and the same Podman
# settings as the host (runc, explicit ulimits). Built once with debootstrap
# (about two and a half minutes) and cached: the image's io.isis.cache label holds a
# hash of this script, so a changed recipe rebuilds and an unchanged one is
# skipped. The image goes to the Podman service at ISIS_PODMAN_URL when that
# is set (the tests' own service and storage), else to the local Podman.
# Prints the image name on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${ISIS_SYSTEMD_IMAGE:-localhost/isis-systemd:trixie}
key=$(sha256sum scripts/systemd-image.sh | cut -c1-16)
pm() { if [ -n "${ISIS_PODMAN_URL:-}" ]; then podman --url "$ISIS_PODMAN_URL" "$@"; else podman "$@"; fi; }

if [ "$(pm image inspect --format '{{index .Labels "io.isis.cache"}}' "$image" 2>/dev/null)" = "$key" ]; then
	echo "$image"
	exit 0
fi

old=$(pm image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
root=$(mktemp -d /var/tmp/isis-systemd-root.XXXXXX)
trap 'rm -rf "$root" "$root.log" "$root.tar"' EXIT
echo "systemd-image: building $image (debootstrap, one to three minutes)" >&2
debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,dbus,libpam-systemd,dbus-user-session,podman,crun,netavark,aardvark-dns,uidmap,passt,slirp4netns,fuse-overlayfs,iptables,nftables,ca-certificates,procps,curl \
	trixie "$root" >"$root.log" 2>&1 ||
	{ tail -20 "$root.log" >&2; exit 1; }

# Podman inside: explicit ulimits as on the host, but crun: runc cannot
# mount the nested cgroup v1 hierarchies of a container inside this one.
cat >"$root/etc/containers/containers.conf" <<'CONF'
# isis systemd test image: written by scripts/systemd-image.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "crun"

[network]
network_backend = "netavark"
CONF
# Storage: overlay, on volumes the test mounts at /var/lib/containers and
# /home/isis/.local/share/containers (overlay on the outer overlay fails).
cat >"$root/etc/containers/storage.conf" <<'CONF'
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF

# The operator of the seed: a user whose manager runs without a login.
chroot "$root" useradd --create-home --uid 1000 --shell /bin/bash isis
echo "isis:100000:65536" >"$root/etc/subuid"
echo "isis:100000:65536" >"$root/etc/subgid"
mkdir -p "$root/var/lib/systemd/linger" "$root/home/isis/.local/share/containers"
touch "$root/var/lib/systemd/linger/isis"
chroot "$root" chown -R isis:isis /home/isis/.local

# The Podman API for root and for every user's manager.
chroot "$root" systemctl enable podman.socket >/dev/null 2>&1
chroot "$root" systemctl --global enable podman.socket >/dev/null 2>&1
# /dev/net/tun for rootless networking (pasta), as udev leaves it on a host.
echo 'z /dev/net/tun 0666 - - -' >"$root/etc/tmpfiles.d/isis-tun.conf"
# Nothing to log in on in a container.
chroot "$root" systemctl mask console-getty.service getty@tty1.service systemd-firstboot.service systemd-modules-load.service >/dev/null 2>&1
echo isis-systemd >"$root/etc/hostname"

rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -cf "$root.tar" .
rm -rf "$root"
pm import --quiet \
	--change "LABEL io.isis.cache=$key" \
	--change 'CMD ["/sbin/init"]' \
	--change 'STOPSIGNAL SIGRTMIN+3' \
	"$root.tar" "$image" >/dev/null
# The image of the previous recipe, now untagged, goes.
[ -z "$old" ] || pm rmi "$old" >/dev/null 2>&1 || true
echo "$image"
