// Package config is isisctl.yaml: every section with its validation, the
// names derived from it (units, slots, roles, images) and its secrets
// (where their values come from, and the ones derived from the database
// password).
package config
