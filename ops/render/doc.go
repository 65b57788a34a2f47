// Package render writes the quadlet units, the backup service and timer and
// the reverse-proxy configurations from the configuration and the specs.
package render
