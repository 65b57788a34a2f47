package podman

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// LabelSpecHash labels every container isisctl creates with its spec's Hash.
const LabelSpecHash = "io.isis.spec-hash"

// SecretRef mounts a Podman secret at /run/secrets/Target.
type SecretRef struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	// UID/GID own the mounted file, readable by its owner only (0400).
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

// Mount is a bind mount (Source is an absolute host path) or a named volume.
type Mount struct {
	Source  string   `json:"source"`
	Dest    string   `json:"dest"`
	Options []string `json:"options,omitempty"`
}

// IsVolume reports whether Source names a volume rather than a host path.
func (m Mount) IsVolume() bool { return !strings.HasPrefix(m.Source, "/") }

// Health is a container health check run without a shell.
type Health struct {
	Cmd         []string      `json:"cmd"`
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"start_period"`
	Retries     uint          `json:"retries"`
}

// ContainerSpec is one container as isisctl deploys it. Both the quadlet unit
// (render) and the API call (up) are made from it, so they cannot drift.
type ContainerSpec struct {
	Name            string            `json:"name"`
	Image           string            `json:"image"`
	Networks        []string          `json:"networks"`
	Publish         []string          `json:"publish,omitempty"` // hostIP:hostPort:containerPort
	Env             map[string]string `json:"env"`
	Secrets         []SecretRef       `json:"secrets,omitempty"`
	Mounts          []Mount           `json:"mounts,omitempty"`
	Tmpfs           []string          `json:"tmpfs,omitempty"`
	User            string            `json:"user,omitempty"`
	ReadOnly        bool              `json:"read_only"`
	NoNewPrivileges bool              `json:"no_new_privileges"`
	DropCaps        []string          `json:"drop_caps,omitempty"`
	AddCaps         []string          `json:"add_caps,omitempty"`
	Health          *Health           `json:"health,omitempty"`
	Command         []string          `json:"command,omitempty"`
	Entrypoint      []string          `json:"entrypoint,omitempty"` // one-off helpers only (not rendered)
	StopTimeout     uint              `json:"stop_timeout"`
	// Restart is Podman's restart policy for containers made through the
	// API ("always", as the quadlet units' Restart=always; "" for jobs).
	Restart string            `json:"restart,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// ImageID pins the image content in the hash (API deploys only).
	ImageID string `json:"image_id,omitempty"`
	// HostPID shares the host's process namespace and NoNetwork gives no
	// network at all: isisctl drill's kill helper only (not rendered).
	HostPID   bool `json:"host_pid,omitempty"`
	NoNetwork bool `json:"no_network,omitempty"`
	// Stdin keeps the container's standard input open for AttachStart,
	// Terminal gives it a TTY (one-off management commands only).
	Stdin    bool `json:"stdin,omitempty"`
	Terminal bool `json:"terminal,omitempty"`
}

// Hash is a digest of the specification (image ID included by the caller
// through Image), used to tell whether a running container is up to date.
func (s *ContainerSpec) Hash() string {
	c := *s
	c.Labels = nil
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ContainerState is what isisctl needs to know of a container.
type ContainerState struct {
	ID        string   `json:"-"`
	Name      string   `json:"name"`
	Exists    bool     `json:"exists"`
	Running   bool     `json:"running"`
	Health    string   `json:"health,omitempty"`
	Image     string   `json:"image,omitempty"`
	ImageID   string   `json:"image_id,omitempty"`
	SpecHash  string   `json:"spec_hash,omitempty"`
	Networks  []string `json:"networks,omitempty"`
	Published []string `json:"published,omitempty"`
	Env       []string `json:"-"`
	StartedAt string   `json:"started_at,omitempty"`
	// RestartCount is how often Podman restarted it under its restart policy.
	RestartCount int               `json:"restart_count"`
	Restart      string            `json:"restart_policy,omitempty"`
	Labels       map[string]string `json:"-"`
	// IPs are its addresses by network name.
	IPs map[string]string `json:"-"`
	// StartTime is when it started running (zero when it is not).
	StartTime time.Time `json:"-"`
	// PID is its main process's in the Podman host's process namespace
	// (0 when it is not running).
	PID int `json:"-"`
}
