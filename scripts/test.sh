#!/usr/bin/env bash
# Sets up what is missing and runs every test: vet, the unit and integration
# tests against real services (PostgreSQL started by the tests themselves,
# Podman started here), the server's packages under the race detector, then a
# short run of every fuzz target.
#
# What it starts, it stops; what the tests make, it removes. Podman runs as a
# service of its own (its own socket and storage), stopped by its pid at the
# end; its containers, volumes (deploy audit trail included) and images go
# with it. Kept between runs, in $ISIS_TEST_CACHE (default /var/cache/isis-test):
# the PostgreSQL test images (labelled io.isis.cache) in podman/, and Podman's
# quadlet generator built from the pinned module. Remove them with
#   podman --root "$ISIS_TEST_CACHE/podman/root" system reset -f; rm -rf "$ISIS_TEST_CACHE"
#
# Steps are functions below, run in order by the list at the end: add one there.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { printf 'test.sh: %s (at %ds)\n' "$*" $(($(date +%s) - t0)); }

export ISIS_TEST_CACHE=${ISIS_TEST_CACHE:-/var/cache/isis-test}
cache=$ISIS_TEST_CACHE
run_dir=$(mktemp -d "${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/isis-test-podman.XXXXXX")
networks_before=
networks_left=
podman_setup=

# podman_start starts our Podman service in the background (on a fresh
# machine, building the PostgreSQL test image takes a minute or two: the
# build of isis runs meanwhile); podman_wait waits for it.
podman_start() {
	networks_before=$(podman network ls -q 2>/dev/null | sort || true)
	ISIS_PODMAN_DIR=$run_dir ISIS_PODMAN_STORAGE=$cache/podman scripts/podman-setup.sh >"$run_dir/setup.out" &
	podman_setup=$!
}
podman_wait() {
	wait "$podman_setup" || { echo "test.sh: scripts/podman-setup.sh failed" >&2; return 1; }
	ISIS_PODMAN_URL=$(tail -n1 "$run_dir/setup.out")
	export ISIS_PODMAN_URL
}

# podman_stop removes what the tests made in our Podman, keeping the labelled
# cache, then stops our service (by its pid, nothing else).
podman_stop() {
	local sock=$run_dir/podman.sock pid id keep left
	if [ -S "$sock" ]; then
		pm() { podman --url "unix://$sock" "$@"; }
		pm pod rm -af -t 0 >/dev/null 2>&1 || true
		pm rm -af -t 0 >/dev/null 2>&1 || true
		pm volume rm -af >/dev/null 2>&1 || true
		pm secret rm --all >/dev/null 2>&1 || true
		keep=$(pm images -q --filter label=io.isis.cache 2>/dev/null || true)
		for id in $(pm images -q 2>/dev/null | sort -u); do
			grep -q "$id" <<<"$keep" || pm rmi -f "$id" >/dev/null 2>&1 || true
		done
		pm image prune -f >/dev/null 2>&1 || true
		# Networks live in the host's configuration (shared with any other Podman
		# service): the tests remove theirs; one that stayed is named and fails
		# the run (the host's network configuration must be as it was), and none
		# is removed here (it may be somebody else's).
		left=$(comm -13 <(echo "$networks_before") <(podman network ls -q 2>/dev/null | sort) | tr '\n' ' ')
		if [ -n "${left// /}" ]; then
			echo "test.sh: networks created during the run and still there (the host's network configuration changed): $left" >&2
			networks_left=1
		fi
	fi
	if pid=$(cat "$run_dir/service.pid" 2>/dev/null) && kill "$pid" 2>/dev/null; then
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	rm -rf "$run_dir"
}

finish() {
	local rc=$?
	# A Podman set-up still under way finishes first, so its service is stopped too;
	# a kube-apiserver build still under way is stopped (its process group).
	[ -z "${podman_setup:-}" ] || wait "$podman_setup" 2>/dev/null || true
	[ -z "${kube_build:-}" ] || kill -- "-$kube_build" 2>/dev/null || true
	podman_stop
	[ "$rc" -ne 0 ] || [ -z "$networks_left" ] || rc=1
	step "done, exit $rc"
	exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# kube_start builds (once; cached) a real Kubernetes API server in the
# background, at low priority, for the kube step at the end.
kube_build=
kube_start() {
	setsid nice -n 10 scripts/kube-apiserver.sh >"$run_dir/kube-apiserver.out" 2>&1 &
	kube_build=$!
}
# kube applies the rendered manifests to it (ops/kube/kubeapi_test.go).
kube() {
	local rc=0
	wait "$kube_build" || rc=$?
	kube_build=
	if [ "$rc" -ne 0 ]; then
		tail -n 30 "$run_dir/kube-apiserver.out" >&2
		echo "test.sh: scripts/kube-apiserver.sh failed" >&2
		return 1
	fi
	ISIS_KUBE_APISERVER=$(tail -n1 "$run_dir/kube-apiserver.out") make test-kube
}

setup() { scripts/setup.sh test; }
build() { make build; }
# vet, then every package (fuzz seed corpora included). The Podman tests publish
# fixed loopback ports: where several runs share a machine, ISIS_E2E_LOCK=FILE
# makes them take turns (flock).
# Much of that time is spent waiting on PostgreSQL, Podman and the browser:
# meanwhile the race and fuzz builds compile at low priority, so that their
# own steps only run (a build that fails there fails again, visibly, in its step).
unit() {
	local rc=0 pre
	prebuild >"$run_dir/prebuild.log" 2>&1 &
	pre=$!
	if [ -n "${ISIS_E2E_LOCK:-}" ]; then flock "$ISIS_E2E_LOCK" make test || rc=$?; else make test || rc=$?; fi
	wait "$pre" || true
	return "$rc"
}
export FUZZ_BIN_DIR=$run_dir/fuzz
prebuild() {
	nice -n 10 scripts/fuzz.sh --build-only
	CGO_ENABLED=1 nice -n 10 go test -race -count=1 -run '^$' ./api/...
}
# The Debian (trixie) image that boots systemd with Podman inside, for the
# quadlet-under-systemd test; built once into our Podman's storage, kept by
# its io.isis.cache label.
systemd_image() {
	ISIS_SYSTEMD_IMAGE=$(scripts/systemd-image.sh | tail -n1)
	export ISIS_SYSTEMD_IMAGE
}
race() { make race; }
fuzz() { make fuzz FUZZTIME="${FUZZTIME:-5s}"; }

main() {
	for s in setup podman_start kube_start build podman_wait systemd_image unit race fuzz kube; do
		step "$s"
		"$s"
	done
}
# One line, read whole before it runs: editing this file during a run cannot change the run.
main "$@"; exit
