package main

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func acceptQueue(t *testing.T, ln net.Listener) uint32 {
	t.Helper()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			t.Fatal(err)
		}
		n = info.Unacked
	})
	return n
}

// TestDrainAccepts: connections the kernel completed and queued, requests
// sent, are all taken by the server before drainAccepts returns, so closing
// the listener then resets none of them.
func TestDrainAccepts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const k = 20
	var clients []net.Conn
	for range k {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /api/health/ HTTP/1.1\r\nHost: localhost\r\n\r\n"))
		clients = append(clients, c)
	}
	for deadline := time.Now().Add(5 * time.Second); acceptQueue(t, ln) != k; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("accept queue holds %d, want %d", acceptQueue(t, ln), k)
		}
	}
	// A slow accept loop, as a busy server's.
	var accepted atomic.Int32
	taken := make(chan net.Conn, k)
	defer func() {
		for range accepted.Load() {
			(<-taken).Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			taken <- c // kept open: the server is working on it
			accepted.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	if err := drainAccepts(ln, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != k {
		t.Fatalf("drainAccepts returned after %s with %d of %d queued connections accepted", time.Since(start), n, k)
	}
	ln.Close()
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("client %d: %v (its connection should be open, waiting for an answer)", i, err)
		}
	}
}
