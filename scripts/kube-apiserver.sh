#!/usr/bin/env bash
# Builds a real Kubernetes API server for the test that applies the manifests
# of `isisctl render --kube` to it (ops/kube/kubeapi_test.go): kube-apiserver from
# the k8s.io/kubernetes module at the version of k8s.io/api in go.mod, through
# the Go module proxy (no Kubernetes release download is reachable here, and
# Debian packages none). Its staging modules are required at their published
# versions, as any program using k8s.io/kubernetes as a library does. Built
# once (three to six minutes of compiling) and cached in
# $ISIS_TEST_CACHE/kube-apiserver/VERSION; a cached binary is used as it is.
# Prints the binary's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
api=$(go list -m -f '{{.Version}}' k8s.io/api)      # v0.37.2
version=v1${api#v0}                                  # v1.37.2
dir=${ISIS_TEST_CACHE:-/var/cache/isis-test}/kube-apiserver/$version
bin=$dir/kube-apiserver
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
# One build at a time per cache (two test runs may share it): the second
# waits, then finds the binary.
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dir/src"
cd "$dir/src"
echo "kube-apiserver: building $version (three to six minutes, once)" >&2
printf 'module isis.test/kube-apiserver\n\ngo 1.26\n' >go.mod
export GOFLAGS=-mod=mod
mod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
{
	printf 'module isis.test/kube-apiserver\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$version"
	# Every k8s.io module k8s.io/kubernetes takes from its own staging/ tree.
	sed -n 's|^\s*\(k8s.io/[a-z0-9.-]*\) => ./staging/.*|\1|p' "$mod" | sort -u |
		while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$api"; done
	printf ')\n'
} >go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >tools.go
go mod tidy >&2
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$bin.tmp" "$bin"
echo "$bin"
