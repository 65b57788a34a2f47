package main

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// drainAccepts readies a listener for a shutdown that drops nothing. Closing
// a listening socket resets every connection the kernel had completed but
// the server not yet accepted: clients that had sent a request see ECONNRESET.
// So first a socket filter that drops new handshakes (SYN without ACK) is
// attached: those clients retransmit their SYN and find the port closed a
// second later, a clean refusal, before they sent anything. Handshakes
// already under way still complete. (Kernels without socket filters, such
// as the CI machine's, get the accept queue shrunk to one instead: a
// handshake admitted in the instant before the close can still be reset.)
// Then this waits, up to max, until the server's accept loop has taken every
// queued connection and the queue has stayed empty for a moment (TCP_INFO's
// unacked is a listener's accept-queue length). http.Server.Shutdown then
// closes the listener with nothing in it, and answers what it accepted.
func drainAccepts(ln net.Listener, max time.Duration) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	// The filter sees the TCP header at offset 0; byte 13 holds the flags.
	dropSYN := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 13},
		{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x12},               // SYN|ACK
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0x02, Jt: 0, Jf: 1}, // SYN alone
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},                                 // drop
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},                        // keep
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(dropSYN)), Filter: &dropSYN[0]})
		if serr != nil {
			// No socket filters in this kernel: shrink the accept queue to
			// one instead, which admits a new connection only while the
			// queue is empty (most of the time, as the loop keeps taking).
			serr = unix.Listen(int(fd), 0)
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	const quiet = 50 * time.Millisecond
	var emptySince time.Time
	for deadline := time.Now().Add(max); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		queued := uint32(1)
		if err := rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				queued = info.Unacked
			} else {
				serr = err
			}
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		switch {
		case queued > 0:
			emptySince = time.Time{}
		case emptySince.IsZero():
			emptySince = time.Now()
		case time.Since(emptySince) >= quiet:
			return nil
		}
	}
	return nil
}
