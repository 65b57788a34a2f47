// Package spec builds the containers' specifications (backend slots, jobs,
// PostgreSQL) from the configuration: one source for the Podman API, the
// quadlet units and the Kubernetes manifests.
package spec
