// Package deploy runs a deploy as a table of steps (preflight, build,
// network, secrets, render, migrate, up, wait, collectstatic, verify), keeps
// the two backend slots, rolls back and installs the quadlet units.
package deploy
