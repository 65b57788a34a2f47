// Package ops holds no code: it is the map of the packages below it,
// everything isisctl does, as a library. cmd/isisctl wires them to cobra.
//
// The arrows point down only: a package imports only packages on a lower
// line (go list -deps shows it; no package imports one that imports it).
//
//	drill      the crash drill: SIGKILL the backend and PostgreSQL, time
//	           the way back through the proxy, check the writes
//	deploy     deploy's step table, the two backend slots, rollback, install
//	cutover    the switch from Django: catch-up import, stop, final import
//	manage     isisctl manage: isis's management commands in a one-off
//	           container of the serving slot's image, attached to isisctl's
//	           terminal or pipes
//	backup     backups, restores and their stores (a directory, S3)
//	host       on the Podman host: networks, secrets, the PostgreSQL
//	           container, its roles, one-off jobs and pg helpers, logs
//	kube       Kubernetes manifests (the only importer of k8s.io)
//	verify     verify's checks, their alarms (docs/runbook.md), the backend's metrics
//	image      building, pushing, pulling and choosing the backend image
//	render     quadlet units, backup timers and proxy configurations
//	audit      the host's audit trail and deploy lock
//	spec       the containers' specifications, from the configuration
//	config     isisctl.yaml: every section, its validation, derived names
//	           and secrets
//	steps      the step engine: a table of steps (summary, plan, run, undo,
//	           clean-up) that deploy, cutover, backup, restore and
//	           import-django run on
//	podman     the only importer of Podman's bindings: the Engine interface
//	           and *Conn; podman/podmantest is an in-memory Engine for
//	           failure-point tests
//
// templates (at the top of the repository) holds the embedded text
// templates that config, render and image execute.
package ops
