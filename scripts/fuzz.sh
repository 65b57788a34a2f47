#!/usr/bin/env bash
# Runs every Go fuzz target for a bounded time each: scripts/fuzz.sh 5s
#   scripts/fuzz.sh --build-only   builds the fuzz binaries and stops
#   FUZZ_BIN_DIR=DIR               keeps the binaries in DIR and uses those already
#                                  there (scripts/test.sh builds them early, while
#                                  other tests run, into a directory of the run)
#
# Each package's instrumented test binary is built once (go test -c -fuzz)
# and runs all of that package's targets: building is most of the cost, and
# `go test -fuzz` would link the binary again for every target. The seed
# corpora (f.Add and testdata/fuzz) also run as plain tests in `make test`.
# A crasher is written to the package's testdata/fuzz/ as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=false
if [ "${1:-}" = --build-only ]; then
	build_only=true
	shift
fi
t=${1:-5s}
tags='remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp'
work=$(mktemp -d "${TMPDIR:-/tmp}/isis-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
bindir=${FUZZ_BIN_DIR:-$work}
mkdir -p "$bindir"
gocache=$(go env GOCACHE)
n=0
while read -r pkg dir; do
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' || true)
	[ -n "$targets" ] || continue
	bin=$bindir/${pkg//\//_}.test
	if [ ! -x "$bin" ]; then
		echo "fuzz: building $pkg"
		CGO_ENABLED=0 go test -c -tags "$tags" -fuzz . -o "$bin.tmp" "$pkg"
		mv "$bin.tmp" "$bin"
	fi
	$build_only && continue
	for f in $targets; do
		echo "fuzz: $pkg $f ($t)"
		log=$work/$f.log
		# As `go test -fuzz` runs it: in the package's directory (testdata/fuzz),
		# with the same corpus cache under GOCACHE.
		if ! (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^$f\$" -test.fuzztime "$t" \
			-test.fuzzcachedir "$gocache/fuzz/$pkg" >"$log" 2>&1); then
			# Go's fuzzer can stop at its deadline with "context deadline exceeded"
			# while a worker is busy: not a finding. A crasher is always written out.
			if grep -q "Failing input written to" "$log" || ! grep -q "context deadline exceeded" "$log"; then
				cat "$log"
				exit 1
			fi
			echo "fuzz: $f stopped at its deadline (no finding)"
		fi
		n=$((n + 1))
	done
done < <(go list -tags "$tags" -f '{{.ImportPath}} {{.Dir}}' ./...)
$build_only || echo "fuzz: $n targets, 0 crashers"
