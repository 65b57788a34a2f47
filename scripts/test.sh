#!/usr/bin/env bash
# Sets up what is missing and runs every test: vet, a short run of every fuzz
# target, then the unit and integration tests against real services
# (PostgreSQL started by the tests themselves, Podman started here), then the
# server's packages under the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
ISIS_PODMAN_URL=$(scripts/podman-setup.sh | tail -n1)
export ISIS_PODMAN_URL
# systemd as PID 1 with Podman inside, for the quadlet units under systemd
# (cmd/isisctl/systemd_test.go); built once, cached by a label.
ISIS_SYSTEMD_IMAGE=$(scripts/systemd-image.sh | tail -n1)
export ISIS_SYSTEMD_IMAGE
make build vet
make fuzz FUZZTIME=${FUZZTIME:-5s}
make test
make race
