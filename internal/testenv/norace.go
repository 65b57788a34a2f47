//go:build !race

package testenv

// Race reports whether the race detector is on: memory figures mean
// nothing then (its shadow memory multiplies a process's RSS).
const Race = false
