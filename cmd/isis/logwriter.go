package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// bufferedLog batches log lines: one write(2) per flush instead of one per
// request line. It flushes every 200 ms, when its 64 KiB buffer fills, and on
// Close, so at most 200 ms of log lines are lost if the process is killed.
type bufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newBufferedLog(w io.Writer) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.stop:
				b.Flush()
				return
			}
		}
	}()
	return b
}

// Write implements io.Writer; slog writes whole lines.
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *bufferedLog) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.w.Flush()
}

// Close flushes and stops the flusher.
func (b *bufferedLog) Close() {
	close(b.stop)
	<-b.done
}
