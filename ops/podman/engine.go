package podman

import (
	"context"
	"io"
	"time"
)

// Engine is what isisctl asks of Podman. *Conn implements it through the
// bindings (the only importer of them); Fake in memory, for unit tests of
// the failure points. A method's context is the connection's.
type Engine interface {
	Version() (string, error)
	// Context is the connection's context, for work bound to its lifetime
	// that is not Podman's (a registry's HTTP API).
	Context() context.Context
	// WithoutCancel is the engine without its context's cancellation, for
	// clean-ups that must run after a signal too.
	WithoutCancel() Engine

	// Containers.
	Inspect(name string) (*ContainerState, error) // Exists false when missing
	List(f ListFilter) ([]*ContainerState, error)
	Create(s *ContainerSpec) error
	Start(name string) error
	Stop(name string, timeout uint) error
	Remove(name string, timeout uint) error // a missing container is fine
	Rename(from, to string) error
	WaitHealthy(ctx context.Context, name string, timeout time.Duration, h *Health) error
	HealthCheck(name string) (string, error) // runs the check once, returns its status
	Wait(name string) (int, error)
	Logs(name string, o LogOptions, stdout, stderr chan string) error
	Exec(name string, cmd []string, stdout, stderr io.Writer) (int, error)
	// AttachStart attaches to a created container's streams, starts it,
	// and returns when its output ends (Wait then has its exit code).
	AttachStart(name string, s Streams) error
	// Resize sets the size of a running container's TTY.
	Resize(name string, width, height int) error
	CopyOut(name, path string, w io.Writer) (func() error, error)
	CopyIn(name, dir string, r io.Reader) (func() error, error)

	// Volumes (also the deploy lock, the audit trail and the roles' marker).
	VolumeCreate(name string, labels map[string]string) error
	VolumeLabels(name string) (map[string]string, error) // an error when missing
	VolumeRemove(name string, force bool) error
	VolumeList(label string) ([]map[string]string, error) // the labels of the volumes carrying label

	// Secrets.
	SecretExists(name string) (bool, error)
	SecretCreate(name, value string, labels map[string]string) error
	SecretRemove(name string) error

	// Networks.
	NetworkInspect(name string) (*Network, error) // an error IsNotFound when missing
	NetworkCreate(n *Network) (*Network, error)

	// Images.
	ImageExists(ref string) (bool, error)
	Image(ref string) (*Image, error)
	ImageTag(id, tag, repo string) error
	Build(b *BuildOptions) (string, error)
	Push(source, dest string, o *TransferOptions) (digest string, err error) // digest "" before Podman 5
	Pull(ref string, o *TransferOptions) error
}

// Streams are what AttachStart connects a container to. A container made
// with Terminal sends everything to Stdout (its TTY merges the two).
type Streams struct {
	Stdin          io.Reader // nil: none (a container made with Stdin keeps it open)
	Stdout, Stderr io.Writer
	// Started, when set, is called once the container runs: its TTY can be
	// sized from then on.
	Started func()
}

// ListFilter selects containers for List: All includes stopped ones.
type ListFilter struct {
	All     bool
	Filters map[string][]string
}

// Network is what isisctl knows of a Podman network.
type Network struct {
	Name     string
	Internal bool
	DNS      bool
	Labels   map[string]string
}

// Image is what isisctl knows of an image.
type Image struct {
	ID   string
	Size int64
	// Digest is the image's manifest digest, and RepoDigests its names with
	// it (name@sha256:…): what pins a tag that moves.
	Digest      string
	RepoDigests []string
}

// BuildOptions is a build of Containerfile in Dir, tagged Ref and Tags.
type BuildOptions struct {
	Dir    string
	Ref    string
	Tags   []string
	Labels []string
	Out    io.Writer
}

// TransferOptions are a push's or pull's: nil fields are the defaults.
type TransferOptions struct {
	SkipTLSVerify      *bool
	Username, Password string
	Progress           io.Writer // nil: quiet
	Format             string    // push only
}

// LogOptions choose which log lines Logs sends.
type LogOptions struct {
	Follow bool
	Tail   string    // lines from the end, or "all"; "" is all
	Until  time.Time // only lines logged before then (to the second); zero: no bound
}
