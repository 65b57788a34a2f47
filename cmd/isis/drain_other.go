//go:build !linux

package main

import (
	"net"
	"time"
)

// drainAccepts is Linux-only (a socket filter and TCP_INFO); elsewhere
// Shutdown closes the listener at once.
func drainAccepts(net.Listener, time.Duration) error { return nil }
