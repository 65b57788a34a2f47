// Package api holds the domain of the isis server: its types, the service
// interfaces the HTTP layer consumes, and the one error type every layer speaks.
//
// Dependencies live in subpackages that adapt them to these types:
// api/postgres (sqlx + lib/pq), api/http (Echo), api/config (settings).
package api

// Version is the build version reported by /api/health/. It is set with
// -ldflags "-X github.com/isis-project/isis/api.Version=…".
var Version = "dev"

// ServingMessage is the message of the log line isis writes once its
// listener is open; isisctl's deploy reads a slot's log for it (when that
// slot began to serve).
const ServingMessage = "isis serving"
