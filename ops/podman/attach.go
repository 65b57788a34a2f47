package podman

import (
	"fmt"
	"io"

	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// The bindings' Attach puts a terminal it is given as an *os.File into raw
// mode and follows its size itself; isisctl does both where it can see
// them (and the fake cannot), so the streams reach the bindings as plain
// readers and writers.
type plainReader struct{ r io.Reader }

func (p *plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

type plainWriter struct{ w io.Writer }

func (p *plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

// AttachStart attaches to container name's streams (through the API's
// hijacked connection: over ssh:// as over a local socket), starts it once
// attached, so no output is lost, and returns when its output ends. The end
// of Stdin closes the container's standard input.
func (c *Conn) AttachStart(name string, s Streams) error {
	var stdin io.Reader
	if s.Stdin != nil {
		stdin = &plainReader{s.Stdin}
	}
	var stdout, stderr io.Writer
	if s.Stdout != nil {
		stdout = &plainWriter{s.Stdout}
	}
	if s.Stderr != nil {
		stderr = &plainWriter{s.Stderr}
	}
	ready := make(chan bool, 1)
	done := make(chan error, 1)
	go func() {
		done <- containers.Attach(c.ctx, name, stdin, stdout, stderr, ready, new(containers.AttachOptions).WithStream(true))
	}()
	select {
	case <-ready:
	case err := <-done:
		return fmt.Errorf("attach to container %q: %w", name, err)
	}
	if err := containers.Start(c.ctx, name, nil); err != nil {
		// The attach ends when the caller removes the container.
		return fmt.Errorf("start container %q: %w", name, err)
	}
	if s.Started != nil {
		s.Started()
	}
	if err := <-done; err != nil {
		return fmt.Errorf("attach to container %q: %w", name, err)
	}
	return nil
}

// Resize sets the size of running container name's TTY.
func (c *Conn) Resize(name string, width, height int) error {
	if err := containers.ResizeContainerTTY(c.ctx, name, new(containers.ResizeTTYOptions).WithWidth(width).WithHeight(height)); err != nil {
		return fmt.Errorf("resize the TTY of container %q: %w", name, err)
	}
	return nil
}
