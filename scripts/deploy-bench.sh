#!/usr/bin/env bash
# Measures isisctl deploy on this machine's Podman service: a no-op deploy
# (nothing changed) and an upgrade (a new image tag: both slots replaced),
# RUNS times each, printing every run and the median. Uses names and ports
# of its own (isis-bench on 127.0.0.1:3063/3064) and removes them after.
# With ISISCTL_TRACE=1 the last upgrade, printed step by step, also prints
# every Podman API request it made, with its time (the timed runs do not).
# Usage: scripts/deploy-bench.sh [RUNS]   (needs scripts/podman-setup.sh's service)
set -euo pipefail
trace=${ISISCTL_TRACE:-}
unset ISISCTL_TRACE
cd "$(dirname "$0")/.."
runs=${1:-5}
url=${ISIS_PODMAN_URL:-unix:///run/isis-podman/podman.sock}
make -s build
dir=$(mktemp -d /tmp/isis-deploy-bench.XXXXXX)
cat >"$dir/isisctl.yaml" <<YAML
domain: api.bench.test
network: swbench
egress_network: swbench-egress
backend:
  name: isis-bench
  publish: 127.0.0.1:3063
  log_dir: $dir/log
  static_dir: $dir/static
postgres:
  name: pg-bench
  image: ${ISIS_PG_TEST_IMAGE:-localhost/isis-postgres-test:15}
  data: isis-bench-pgdata
secrets:
  secret_key: bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz
  database_password: bench-database-password
build:
  isis_binary: $PWD/bin/isis
YAML
ctl() { bin/isisctl --config "$dir/isisctl.yaml" --url "$url" "$@"; }
remove() {
	for c in isis-bench isis-bench-b isis-bench-previous isis-bench-b-previous isis-bench-migrate isis-bench-collectstatic pg-bench; do
		podman --url "$url" rm -f -t 0 "$c" >/dev/null 2>&1 || true
	done
	podman --url "$url" volume rm -f isis-bench-pgdata >/dev/null 2>&1 || true
	podman --url "$url" network rm -f swbench swbench-egress >/dev/null 2>&1 || true
}
trap 'remove; rm -rf "$dir"' EXIT
remove
ctl deploy --tag bench-0 >/dev/null
timeit() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
noop=(); upgrade=()
echo "load before: $(uptime | sed 's/.*load average: //')"
# Each upgrade starts from a settled deployment, as an operator's does: the
# switch waits until the slot left serving has been up 3 s (ops/deploy/slots.go,
# settlePrimary), so back-to-back upgrades would measure that wait instead.
for i in $(seq 1 "$runs"); do
	noop+=("$(timeit ctl deploy --tag "bench-$((i - 1))")")
	sleep 3
	upgrade+=("$(timeit ctl deploy --tag "bench-$i")")
done
sleep 3
echo "the last upgrade, step by step:"
ISISCTL_TRACE=$trace ctl deploy --tag "bench-$((runs + 1))" 2>&1 | sed 's/^/  /'
echo "load after: $(uptime | sed 's/.*load average: //')"
echo "no-op deploy (ms): ${noop[*]}; median $(printf '%s\n' "${noop[@]}" | median)"
echo "upgrade (ms):      ${upgrade[*]}; median $(printf '%s\n' "${upgrade[@]}" | median)"
