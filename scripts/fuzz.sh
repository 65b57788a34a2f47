#!/usr/bin/env bash
# Runs every Go fuzz target for a bounded time each: scripts/fuzz.sh 5s
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5s}
tags='remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp'
n=0
for pkg in $(go list -tags "$tags" ./...); do
	dir=$(go list -tags "$tags" -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "fuzz: $pkg $f ($t)"
		if ! CGO_ENABLED=0 go test -tags "$tags" -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/isis-fuzz.log 2>&1; then
			# Go's fuzzer can stop at its deadline with "context deadline exceeded"
			# while a worker is busy: not a finding. A crasher is always written out.
			if grep -q "Failing input written to" /tmp/isis-fuzz.log || ! grep -q "context deadline exceeded" /tmp/isis-fuzz.log; then
				cat /tmp/isis-fuzz.log
				exit 1
			fi
			echo "fuzz: $f stopped at its deadline (no finding)"
		fi
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, 0 crashers"
