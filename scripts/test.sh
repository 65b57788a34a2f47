#!/usr/bin/env bash
# Sets up what is missing and runs every test: vet, the unit and integration
# tests against real services (PostgreSQL started by the tests themselves,
# Podman started here), the server's packages under the race detector, a
# short run of every fuzz target, and the Kubernetes manifests applied to a
# real kube-apiserver.
#
# Side by side where they share no resource but the CPU: the images' debootstraps
# with the Go modules, the kube-apiserver build and `make build` (whose
# compiled packages the lanes reuse); then lanes, two busy ones at a time,
# each with a log of its own printed when it ends: the Podman end-to-end tests
# (the longest, at normal priority); beside them the other packages with the
# server's under the race detector, then the fuzz targets (at low priority,
# filling the time the end-to-end tests wait on containers), while the kube
# step runs in front.
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

# The Podman tests publish fixed loopback ports, and every Podman service on a
# host shares its network configuration and container DNS: where several runs
# share a machine, ISIS_E2E_LOCK=FILE makes them take turns (flock), for the
# whole run, from before our service starts to after it stopped (the lock
# goes with this shell; nothing started in the background inherits it).
if [ -n "${ISIS_E2E_LOCK:-}" ]; then
	exec 8>>"$ISIS_E2E_LOCK"
	flock 8
fi
podman_setup=
systemd_build=
kube_build=
lanes=()

# bg LOG CMD...: runs CMD in the background in a process group of its own
# (so that finish can stop all of it), its output to LOG; the pid is in $!.
bg() {
	local log=$1
	shift
	set -m
	"$@" >"$log" 2>&1 8>&- &
	set +m
}

# images_start starts our Podman service in the background and has it build
# the PostgreSQL test image (podman-setup.sh) and the systemd test image
# (systemd-image.sh): on a fresh machine two debootstraps, a few minutes of
# downloading and unpacking while the Go modules download and isis compiles;
# both cached (io.isis.cache) afterwards. podman_wait and systemd_wait wait.
images_start() {
	networks_before=$(podman network ls -q 2>/dev/null | sort || true)
	ISIS_PODMAN_DIR=$run_dir ISIS_PODMAN_STORAGE=$cache/podman scripts/podman-setup.sh >"$run_dir/setup.out" 8>&- &
	podman_setup=$!
	export ISIS_PODMAN_URL=unix://$run_dir/podman.sock
	bg "$run_dir/systemd-image.out" systemd_image
	systemd_build=$!
}
# systemd_image: once the service answers (podman-setup.sh starts it first).
systemd_image() {
	local i
	for i in $(seq 1 600); do
		curl -fsS --unix-socket "$run_dir/podman.sock" http://d/_ping >/dev/null 2>&1 && break
		[ "$i" -lt 600 ] || { echo "the Podman service did not answer in 5 minutes" >&2; return 1; }
		sleep 0.5
	done
	scripts/systemd-image.sh
}
podman_wait() {
	wait "$podman_setup" || { echo "test.sh: scripts/podman-setup.sh failed" >&2; return 1; }
	podman_setup=
	[ "$(tail -n1 "$run_dir/setup.out")" = "$ISIS_PODMAN_URL" ] || {
		echo "test.sh: scripts/podman-setup.sh printed $(tail -n1 "$run_dir/setup.out"), not $ISIS_PODMAN_URL" >&2
		return 1
	}
}
systemd_wait() {
	wait "$systemd_build" || {
		tail -n 30 "$run_dir/systemd-image.out" >&2
		echo "test.sh: scripts/systemd-image.sh failed" >&2
		return 1
	}
	systemd_build=
	ISIS_SYSTEMD_IMAGE=$(tail -n1 "$run_dir/systemd-image.out")
	export ISIS_SYSTEMD_IMAGE
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
	local rc=$? pid
	# Lanes and builds still under way (an early exit) are stopped, each its
	# process group; a Podman set-up still under way finishes first, so its
	# service is stopped too.
	for pid in "${lanes[@]}" $systemd_build $kube_build; do
		kill -- "-$pid" 2>/dev/null || true
	done
	for pid in "${lanes[@]}" $systemd_build; do
		wait "$pid" 2>/dev/null || true
	done
	[ -z "${podman_setup:-}" ] || wait "$podman_setup" 2>/dev/null || true
	podman_stop
	[ "$rc" -ne 0 ] || [ -z "$networks_left" ] || rc=1
	step "done, exit $rc"
	exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# kube_start builds (once; cached) a real Kubernetes API server in the
# background, at low priority, for the kube lane; its exit status lands in
# kube-apiserver.rc (a lane cannot wait for a sibling process).
kube_start() {
	bg "$run_dir/kube-apiserver.out" kube_build_run
	kube_build=$!
}
kube_build_run() {
	local rc=0
	nice -n 10 scripts/kube-apiserver.sh || rc=$?
	echo "$rc" >"$run_dir/kube-apiserver.rc"
	return "$rc"
}
# lane_kube applies the rendered manifests to it (ops/kube/kubeapi_test.go)
# once it is built.
lane_kube() {
	until [ -e "$run_dir/kube-apiserver.rc" ]; do sleep 1; done
	if [ "$(cat "$run_dir/kube-apiserver.rc")" != 0 ]; then
		tail -n 30 "$run_dir/kube-apiserver.out" >&2
		echo "test.sh: scripts/kube-apiserver.sh failed" >&2
		return 1
	fi
	ISIS_KUBE_APISERVER=$(tail -n1 "$run_dir/kube-apiserver.out") make test-kube
}

packages() { scripts/setup.sh test --packages-only; }
setup() { scripts/setup.sh test; }
# build: the release binaries, before the lanes, which then find every package
# they share compiled (the Makefile compiles everything with -trimpath); two
# lanes compiling the same packages at once would each compile them.
build() { make build; }

# The lanes.
lane_e2e() { make test-e2e; }
# The other packages, and the server's under the race detector (their only run
# here: `make test` runs them without it).
lane_other() { nice -n 10 make -k test-other race; }
lane_fuzz() { nice -n 15 make fuzz FUZZTIME="${FUZZTIME:-5s}"; }

# tests runs the lanes side by side, the kube lane waiting for its build
# meanwhile, and prints each lane's log as it ends (and starts the lane that
# follows it); every lane runs to its end, and any that failed fails the run.
tests() {
	local name failed=() done_pid lane_rc
	declare -A lane_name=() lane_t0=()
	lane() {
		bg "$run_dir/lane-$1.log" "lane_$1"
		lanes+=("$!")
		lane_name[$!]=$1
		lane_t0[$!]=$(date +%s)
	}
	# Never more than two busy lanes at once: the fuzz lane starts when the
	# other packages' lane ends. (The
	# zero-downtime tests time deploys against nginx's fail_timeout; four
	# lanes on two cores once stretched a deploy to 23.7 s.)
	lane other
	# The end-to-end tests also need the systemd image (at once, but for its
	# first debootstrap).
	systemd_wait
	lane e2e
	lane kube
	while [ "${#lane_name[@]}" -gt 0 ]; do
		lane_rc=0
		wait -n -p done_pid "${!lane_name[@]}" || lane_rc=$?
		name=${lane_name[$done_pid]}
		step "lane $name: exit $lane_rc after $(($(date +%s) - lane_t0[$done_pid]))s"
		cat "$run_dir/lane-$name.log"
		unset "lane_name[$done_pid]"
		[ "$lane_rc" -eq 0 ] || failed+=("$name")
		case $name in
		other) lane fuzz ;;
		esac
	done
	lanes=()
	if [ "${#failed[@]}" -gt 0 ]; then
		echo "test.sh: failed: ${failed[*]}" >&2
		return 1
	fi
}

main() {
	for s in packages images_start setup kube_start build podman_wait tests; do
		step "$s"
		"$s"
	done
}
# One line, read whole before it runs: editing this file during a run cannot change the run.
main "$@"; exit
