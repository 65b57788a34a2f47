// Package host is what runs on the Podman host below a deploy: networks,
// secrets, the PostgreSQL container and its owner/app roles, one-off jobs of
// the backend image, pg helper containers, host directories and logs.
package host
