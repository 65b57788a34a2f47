// Package verify checks a running deployment (containers, health, restart
// loops, proxy upstreams, secrets out of the environment) and reads
// the backend's metrics.
package verify
