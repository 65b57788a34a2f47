// Package ops is everything isisctl does, as a library: configuration,
// rendering quadlet units and Kubernetes manifests, building and pushing
// the image, networks, secrets, containers, migrations, backups, restores,
// verification, deploys and the cutover from Django.
//
// The arrows go one way (a package never imports one that imports it):
//
//	cmd/isisctl ──► ops ──► ops/steps    the step engine: an ordered table of
//	                 │                   steps (summary, plan, run, undo) that
//	                 │                   deploy and cutover run on, so every
//	                 │                   multi-step operation prints, dry-runs
//	                 │                   and undoes the same way
//	                 └────► ops/podman   the only importer of Podman's bindings:
//	                          ▲          the Engine interface (containers,
//	                          │          volumes, secrets, networks, images),
//	                          │          *Conn implementing it, the container
//	                          │          spec (ContainerSpec, its Hash) and
//	                          │          state; ops takes a podman.Engine, not
//	                          │          a context carrying a connection
//	            ops/podman/podmantest    Fake, an in-memory Engine for unit
//	                                     tests of failure points (EnsureBackend,
//	                                     deploy's undo); the end-to-end tests
//	                                     run against a real Podman
//
// Inside ops the files still form one package; the islands the issue names
// (config, render, kube, image, verify, backup, deploy, cutover) are not
// separate packages yet.
package ops
