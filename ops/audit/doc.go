// Package audit keeps isisctl's audit trail and deploy lock on the Podman
// host itself (labelled volumes), readable over ssh:// as over a local socket.
package audit
