#!/usr/bin/env bash
# Sets up what is missing and runs every test: vet, a short run of every fuzz
# target, then the unit and integration tests against real services.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
make build vet
make fuzz FUZZTIME=${FUZZTIME:-5s}
make test
