// Package templates embeds the text/templates isisctl renders: Podman quadlet
// units, the backend's Containerfile, reverse-proxy snippets and the starter
// configuration.
package templates

import "embed"

// FS holds every *.tmpl file of this directory.
//
//go:embed *.tmpl
var FS embed.FS
