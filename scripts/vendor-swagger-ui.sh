#!/usr/bin/env bash
# Vendors swagger-ui-dist (npm) into the embedded static assets. Run it to
# upgrade; the files are committed, so builds need no network.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-5.35.0}
dest=api/static/files/docs/swagger-ui
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$version" >/dev/null && tar xzf swagger-ui-dist-"$version".tgz)
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do
	cp "$tmp/package/$f" "$dest/$f"
done
echo "$version" > "$dest/VERSION"
echo "vendored swagger-ui-dist $version into $dest"
