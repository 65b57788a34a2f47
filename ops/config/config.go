package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/isis-project/isis/templates"
	"go.yaml.in/yaml/v3"
)

// Config is isisctl.yaml.
type Config struct {
	Domain        string         `yaml:"domain"`
	PodmanURL     string         `yaml:"podman_url"`
	Network       string         `yaml:"network"`
	EgressNetwork string         `yaml:"egress_network"`
	Backend       BackendConfig  `yaml:"backend"`
	Postgres      PostgresConfig `yaml:"postgres"`
	Secrets       SecretsConfig  `yaml:"secrets"`
	Build         BuildConfig    `yaml:"build"`
	Units         UnitsConfig    `yaml:"units"`
	Proxy         ProxyConfig    `yaml:"proxy"`
	Kube          KubeConfig     `yaml:"kube"`
	Backup        BackupConfig   `yaml:"backup"`
	Registry      RegistryConfig `yaml:"registry"`

	// File is where the configuration came from ("" for defaults only).
	File string `yaml:"-"`
	// lines maps each key set in File ("backend.env.X") to its line;
	// fromEnv maps each key an ISISCTL_* variable set to that variable.
	lines   map[string]int
	fromEnv map[string]string
}

// BackendConfig describes the isis-backend container.
type BackendConfig struct {
	Name    string `yaml:"name"`
	Image   string `yaml:"image"`
	Tag     string `yaml:"tag"`
	Publish string `yaml:"publish"`
	// StandbyPublish is slot B's loopback address (default: publish's port + 1).
	StandbyPublish string `yaml:"standby_publish"`
	// DrainTimeout bounds how long a replaced backend finishes its requests
	// (isis's SHUTDOWN_TIMEOUT; default 25s).
	DrainTimeout string            `yaml:"drain_timeout"`
	LogDir       string            `yaml:"log_dir"`
	StaticDir    string            `yaml:"static_dir"`
	Env          map[string]string `yaml:"env"`
}

// PostgresConfig describes the postgres18 container.
type PostgresConfig struct {
	Name     string `yaml:"name"`
	Image    string `yaml:"image"`
	Data     string `yaml:"data"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
}

// SecretsConfig holds secret values or the files they come from.
type SecretsConfig struct {
	SecretKey              string `yaml:"secret_key"`
	SecretKeyFile          string `yaml:"secret_key_file"`
	DatabasePassword       string `yaml:"database_password"`
	DatabasePasswordFile   string `yaml:"database_password_file"`
	AWSSecretAccessKey     string `yaml:"aws_secret_access_key"`
	AWSSecretAccessKeyFile string `yaml:"aws_secret_access_key_file"`
}

// BuildConfig says what goes into the image.
type BuildConfig struct {
	IsisBinary string `yaml:"isis_binary"`
}

// UnitsConfig says where quadlet units go.
type UnitsConfig struct {
	Dir string `yaml:"dir"`
}

// Error is a bad or missing configuration value (exit code 2).
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	where := e.File
	if where == "" {
		where = "configuration"
	}
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: key %s: %s", where, e.Key, e.Msg)
	}
	return where + ": " + e.Msg
}

// Default is the configuration with nothing set.
func Default() *Config {
	return &Config{
		Network:       "swe2",
		EgressNetwork: "isis-egress",
		Backend: BackendConfig{
			Name: "isis-backend", Image: "localhost/isis-backend", Publish: "127.0.0.1:3003",
			LogDir: "/var/log/isis", StaticDir: "/var/lib/isis/static",
		},
		Postgres: PostgresConfig{
			Name: "postgres18", Image: "docker.io/library/postgres:18", Data: "isis-pgdata",
			Database: "isis", User: "isis",
		},
		Kube:     defaultKubeConfig(),
		Backup:   defaultBackupConfig(),
		Registry: RegistryConfig{TLSVerify: true},
	}
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\S+)`)

// Load reads path (when it exists or was asked for explicitly), then
// applies ISISCTL_* variables from getenv, then validates.
func Load(path string, explicit bool, getenv func(string) string) (*Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		c.File = path
		if err := decodeStrict(b, c, path); err != nil {
			return nil, err
		}
		c.lines = keyLines(b)
	case errors.Is(err, os.ErrNotExist) && !explicit:
	default:
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v (create one with isisctl init)", UnwrapPath(err))}
	}
	if err := applyEnv(c, getenv); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

func UnwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// decodeStrict decodes YAML, refusing unknown keys with their line.
func decodeStrict(b []byte, c *Config, file string) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file is the defaults
		if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &Error{File: file, Line: line, Key: keyPath(m[3], m[2]), Msg: "unknown key"}
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "\n", " ")
		line := 0
		if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
	}
	return nil
}

// keyLines maps every key of a YAML document ("backend.env.X") to the line
// it is on, so that an error about a value can point at it.
func keyLines(b []byte) map[string]int {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	out := map[string]int{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := prefix + n.Content[i].Value
			out[key] = n.Content[i].Line
			walk(n.Content[i+1], key+".")
		}
	}
	walk(doc.Content[0], "")
	return out
}

// keyError is an Error about key's value, pointing at where that value
// came from: its line in the file, or the ISISCTL_* variable that set it.
func (c *Config) KeyError(key, msg string) *Error {
	if env, ok := c.fromEnv[key]; ok {
		return &Error{File: env, Key: key, Msg: msg}
	}
	return &Error{File: c.File, Line: c.lines[key], Key: key, Msg: msg}
}

// keyPath names a field of a section type as it appears in the file.
func keyPath(typ, field string) string {
	sections := map[string]string{
		"config.BackendConfig": "backend.", "config.PostgresConfig": "postgres.", "config.SecretsConfig": "secrets.",
		"config.BuildConfig": "build.", "config.UnitsConfig": "units.", "config.ProxyConfig": "proxy.",
		"config.KubeConfig":     "kube.",
		"config.BackupConfig":   "backup.",
		"config.RegistryConfig": "registry.",
	}
	return sections[typ] + field
}

// envVars lists every scalar key with its ISISCTL_ variable, in file order.
func envVars(c *Config) []struct {
	Key, Env string
	Field    reflect.Value
} {
	var out []struct {
		Key, Env string
		Field    reflect.Value
	}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			f := v.Field(i)
			switch f.Kind() {
			case reflect.Struct:
				walk(f, prefix+tag+".")
			case reflect.String, reflect.Bool:
				key := prefix + tag
				out = append(out, struct {
					Key, Env string
					Field    reflect.Value
				}{key, "ISISCTL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")), f})
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// applyEnv overrides keys from ISISCTL_* variables; ISISCTL_BACKEND_ENV_X
// sets backend.env.X.
func applyEnv(c *Config, getenv func(string) string) error {
	for _, ev := range envVars(c) {
		v := getenv(ev.Env)
		switch {
		case v == "":
		case ev.Field.Kind() == reflect.Bool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return &Error{Key: ev.Key, Msg: fmt.Sprintf("%s=%q is not true or false", ev.Env, v)}
			}
			ev.Field.SetBool(b)
		default:
			ev.Field.SetString(v)
			c.setFromEnv(ev.Key, ev.Env)
		}
	}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if name, ok := strings.CutPrefix(k, "ISISCTL_BACKEND_ENV_"); ok && getenv(k) != "" {
			if c.Backend.Env == nil {
				c.Backend.Env = map[string]string{}
			}
			c.Backend.Env[name] = v
			c.setFromEnv("backend.env."+name, k)
		}
	}
	return nil
}

func (c *Config) setFromEnv(key, env string) {
	if c.fromEnv == nil {
		c.fromEnv = map[string]string{}
	}
	c.fromEnv[key] = env
}

var (
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	envRE  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	HostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
)

// Settings that must never be plain environment values of the backend.
var SecretEnv = plainSecretSettings()

// Validate checks every key, naming the first bad one.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return c.KeyError(key, fmt.Sprintf(format, args...))
	}
	if c.Domain != "" && !HostRE.MatchString(c.Domain) {
		return bad("domain", "%q is not a host name", c.Domain)
	}
	for key, v := range map[string]string{
		"network": c.Network, "egress_network": c.EgressNetwork, "backend.name": c.Backend.Name,
		"postgres.name": c.Postgres.Name, "postgres.database": c.Postgres.Database, "postgres.user": c.Postgres.User,
	} {
		if !nameRE.MatchString(v) {
			return bad(key, "%q is not a valid name (letters, digits, _ . -)", v)
		}
	}
	if n := len(c.Postgres.User) + len(ownerRoleSuffix); n > 63 {
		return bad("postgres.user", "%q is too long: the owner role %s%s would have %d bytes, PostgreSQL allows 63", c.Postgres.User, c.Postgres.User, ownerRoleSuffix, n)
	}
	if c.Network == c.EgressNetwork {
		return bad("egress_network", "must differ from network")
	}
	if !ValidBackendImage(c.Backend.Image) {
		return bad("backend.image", "%q is neither an image name without tag nor a pushed digest reference (registry/repo@sha256:...)", c.Backend.Image)
	}
	if key, msg := c.Registry.validate(); key != "" {
		return bad(key, "%s", msg)
	}
	if c.Postgres.Image == "" || strings.ContainsAny(c.Postgres.Image, " ") {
		return bad("postgres.image", "%q is not an image reference", c.Postgres.Image)
	}
	if _, err := c.PublishAddr(); err != nil {
		return bad("backend.publish", "%v", err)
	}
	if key, msg := c.Proxy.Validate(); key != "" {
		return bad(key, "%s", msg)
	}
	if key, msg := c.Kube.Validate(); key != "" {
		return bad(key, "%s", msg)
	}
	if _, err := c.Drain(); err != nil {
		return bad("backend.drain_timeout", "%v", err)
	}
	if sb, err := c.StandbyAddr(); err != nil {
		return bad("backend.standby_publish", "%v", err)
	} else if pa, _ := c.PublishAddr(); sb == pa {
		return bad("backend.standby_publish", "%q is backend.publish itself: the standby slot needs a port of its own", sb)
	}
	if key, msg := c.Backup.validate(); key != "" {
		return bad(key, "%s", msg)
	}
	for key, p := range map[string]string{"backend.log_dir": c.Backend.LogDir, "backend.static_dir": c.Backend.StaticDir} {
		if p != "" && !filepath.IsAbs(p) {
			return bad(key, "%q is not an absolute path", p)
		}
	}
	if d := c.Postgres.Data; d == "" || (strings.Contains(d, "/") && !filepath.IsAbs(d)) || (!strings.Contains(d, "/") && !nameRE.MatchString(d)) {
		return bad("postgres.data", "%q is neither a volume name nor an absolute host path", d)
	}
	keys := make([]string, 0, len(c.Backend.Env))
	for k := range c.Backend.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envRE.MatchString(k) {
			return bad("backend.env."+k, "not an environment variable name")
		}
		if where, ok := SecretEnv[k]; ok || strings.HasSuffix(k, "_FILE") {
			return bad("backend.env."+k, "secrets are not plain environment values; set %s instead", where)
		}
	}
	for _, sd := range SecretTable {
		if v, f := sd.value(c); v != "" && f != "" {
			return bad(sd.Key, "set either the value or %s_file, not both", sd.Key)
		}
	}
	return nil
}

// NeedDomain is checked by the commands that use the public host name
// (render, up, deploy, verify); status and logs work without it.
func (c *Config) NeedDomain() error {
	if c.Domain == "" {
		return &Error{File: c.File, Key: "domain", Msg: "required: the public host name, e.g. api.example.com (isisctl init writes a starter file)"}
	}
	return nil
}

// PublishAddr parses backend.publish ("127.0.0.1:3003").
func (c *Config) PublishAddr() (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(c.Backend.Publish)
	if err != nil || ap.Port() == 0 {
		return ap, fmt.Errorf("%q is not an address:port like 127.0.0.1:3003", c.Backend.Publish)
	}
	if !ap.Addr().IsLoopback() {
		return ap, fmt.Errorf("%q is not a loopback address: the backend is published for a local reverse proxy only", c.Backend.Publish)
	}
	return ap, nil
}

// Drain is backend.drain_timeout (default 25s, between 1s and 10m).
func (c *Config) Drain() (time.Duration, error) {
	if c.Backend.DrainTimeout == "" {
		return 25 * time.Second, nil
	}
	d, err := time.ParseDuration(c.Backend.DrainTimeout)
	if err != nil || d < time.Second || d > 10*time.Minute {
		return 0, fmt.Errorf("%q is not a duration between 1s and 10m (e.g. 25s)", c.Backend.DrainTimeout)
	}
	return d, nil
}

// StandbyAddr is where slot B (the standby backend) is published:
// backend.standby_publish, else backend.publish's port + 1.
func (c *Config) StandbyAddr() (netip.AddrPort, error) {
	if c.Backend.StandbyPublish == "" {
		pa, err := c.PublishAddr()
		if err != nil {
			return pa, err
		}
		if pa.Port() == 65535 {
			return pa, fmt.Errorf("backend.publish uses port 65535: set backend.standby_publish")
		}
		return netip.AddrPortFrom(pa.Addr(), pa.Port()+1), nil
	}
	ap, err := netip.ParseAddrPort(c.Backend.StandbyPublish)
	if err != nil || ap.Port() == 0 {
		return ap, fmt.Errorf("%q is not an address:port like 127.0.0.1:3004", c.Backend.StandbyPublish)
	}
	if !ap.Addr().IsLoopback() {
		return ap, fmt.Errorf("%q is not a loopback address: the backend is published for a local reverse proxy only", c.Backend.StandbyPublish)
	}
	return ap, nil
}

// Placeholders lists the keys still holding changeme-* values.
func (c *Config) Placeholders() []string {
	var out []string
	for _, ev := range envVars(c) {
		if ev.Field.Kind() == reflect.String && strings.HasPrefix(strings.ToLower(ev.Field.String()), "changeme") {
			out = append(out, ev.Key)
		}
	}
	for k, v := range c.Backend.Env {
		if strings.HasPrefix(strings.ToLower(v), "changeme") {
			out = append(out, "backend.env."+k)
		}
	}
	sort.Strings(out)
	return out
}

// PlaceholderError reports changeme-* values left in (exit code 2).
func (c *Config) PlaceholderError() error {
	ph := c.Placeholders()
	if len(ph) == 0 {
		return nil
	}
	// In file order, each with its line (or the variable that set it).
	sort.SliceStable(ph, func(i, j int) bool { return c.lines[ph[i]] < c.lines[ph[j]] })
	where := make([]string, len(ph))
	for i, k := range ph {
		switch {
		case c.fromEnv[k] != "":
			where[i] = k + " (" + c.fromEnv[k] + ")"
		case c.lines[k] > 0:
			where[i] = fmt.Sprintf("%s (line %d)", k, c.lines[k])
		default:
			where[i] = k
		}
	}
	return c.KeyError(ph[0], fmt.Sprintf("still holds a changeme-* placeholder; replace every one: %s", strings.Join(where, ", ")))
}

// Starter is the commented isisctl.yaml that init writes.
func Starter(domain string) ([]byte, error) {
	if !HostRE.MatchString(domain) {
		return nil, &Error{Key: "domain", Msg: fmt.Sprintf("%q is not a host name", domain)}
	}
	s, err := templates.Execute("isisctl.yaml.tmpl", struct{ Domain string }{domain})
	return []byte(s), err
}
