package render

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containers/podman/v5/pkg/systemd/parser"
	"github.com/containers/podman/v5/pkg/systemd/quadlet"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/templates"
)

// File is one rendered file, relative to the output directory.
type File struct {
	Name    string `json:"name"`
	Content string `json:"-"`
	Mode    os.FileMode
}

// Options say how units are rendered.
type Options struct {
	Image  string // backend image reference
	System bool   // units for root's systemd (multi-user.target) instead of a user's
}

// serviceName is the systemd service quadlet makes of a unit file.
func ServiceName(unit string) string {
	ext := filepath.Ext(unit)
	base := strings.TrimSuffix(unit, ext)
	if ext == ".container" {
		return base + ".service"
	}
	return base + "-" + ext[1:] + ".service"
}

type containerData struct {
	File, Description string
	Requires          []string
	Spec              *podman.ContainerSpec
	Networks          []string
	Env               []string
	Volumes           []string
	HealthCmd         string
	Labels            []string
	Exec              string
	WantedBy          string
}

// quoteUnit quotes a unit-file value when systemd would split or unescape it.
func quoteUnit(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func containerUnit(c *config.Config, file, desc string, cs *podman.ContainerSpec, requires []string, o Options) (string, error) {
	d := containerData{File: file, Description: desc, Spec: cs, Requires: requires, WantedBy: "default.target"}
	if o.System {
		d.WantedBy = "multi-user.target"
	}
	for _, n := range cs.Networks {
		d.Networks = append(d.Networks, n+".network")
	}
	for _, e := range spec.SortedEnv(cs.Env) {
		d.Env = append(d.Env, quoteUnit(e))
	}
	for _, m := range cs.Mounts {
		src := m.Source
		if m.IsVolume() {
			src += ".volume"
		}
		v := src + ":" + m.Dest
		if len(m.Options) > 0 {
			v += ":" + strings.Join(m.Options, ",")
		}
		d.Volumes = append(d.Volumes, v)
	}
	if cs.Health != nil {
		b, _ := json.Marshal(cs.Health.Cmd)
		d.HealthCmd = string(b)
	}
	keys := make([]string, 0, len(cs.Labels))
	for k := range cs.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.Labels = append(d.Labels, quoteUnit(k+"="+cs.Labels[k]))
	}
	if len(cs.Command) > 0 {
		q := make([]string, len(cs.Command))
		for i, a := range cs.Command {
			q[i] = quoteUnit(a)
		}
		d.Exec = strings.Join(q, " ")
	}
	return templates.Execute("container.tmpl", d)
}

// Render renders every quadlet unit and the reverse-proxy snippets.
func Render(c *config.Config, o Options) ([]File, error) {
	if err := c.NeedDomain(); err != nil {
		return nil, err
	}
	if !config.IsPinnedRef(o.Image) {
		return nil, &config.UnpinnedImageError{Image: o.Image}
	}
	var files []File
	add := func(name, content string, err error) error {
		if err != nil {
			return err
		}
		files = append(files, File{Name: name, Content: content, Mode: 0o644})
		return nil
	}
	addT := func(name, tmpl string, data any) error {
		s, err := templates.Execute(tmpl, data)
		return add(name, s, err)
	}
	type netData struct {
		File, Description, Name string
		Internal                bool
	}
	if err := addT(c.NetworkUnit(), "network.tmpl", netData{c.NetworkUnit(),
		"isis private network: backend and PostgreSQL, no route out", c.Network, true}); err != nil {
		return nil, err
	}
	if err := addT(c.EgressUnit(), "network.tmpl", netData{c.EgressUnit(),
		"isis egress network: the backend's way out to S3/R2 and Google", c.EgressNetwork, false}); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.Postgres.Data, "/") {
		if err := addT(c.VolumeUnit(), "volume.tmpl", struct{ File, Description, Name string }{
			c.VolumeUnit(), "isis PostgreSQL data", c.Postgres.Data}); err != nil {
			return nil, err
		}
	}
	pg, err := containerUnit(c, c.PostgresUnit(), "isis PostgreSQL ("+c.Postgres.Name+")", spec.Postgres(c), nil, o)
	if err := add(c.PostgresUnit(), pg, err); err != nil {
		return nil, err
	}
	for _, sl := range c.Slots() {
		desc := "isis API backend, slot A (" + sl.Name + ")"
		if sl.ID == "b" {
			desc = "isis API backend, slot B: the standby the proxy uses while slot A is replaced (" + sl.Name + ")"
		}
		unit := sl.Name + ".container"
		be, err := containerUnit(c, unit, desc, spec.ForSlot(c, sl, o.Image), []string{ServiceName(c.PostgresUnit())}, o)
		if err := add(unit, be, err); err != nil {
			return nil, err
		}
	}
	slots := c.Slots()
	proxy, err := newProxyData(c, slots[0].Addr.String())
	if err != nil {
		return nil, err
	}
	proxy.Standby = slots[1].Addr.String()
	proxy.Name = strings.NewReplacer("-", "_", ".", "_").Replace(c.Backend.Name)
	if err := addT("proxy/Caddyfile", "Caddyfile.tmpl", proxy); err != nil {
		return nil, err
	}
	if err := addT("proxy/nginx-isis.conf", "nginx.conf.tmpl", proxy); err != nil {
		return nil, err
	}
	return renderBackupUnits(c, files, o)
}

// CheckUnits converts each quadlet unit with Podman's own quadlet code, as
// `quadlet -dryrun` does, and fails on any error, warning or unknown key.
func CheckUnits(files []File, user bool) error {
	units := map[string]*parser.UnitFile{}
	info := map[string]*quadlet.UnitInfo{}
	for _, f := range files {
		if _, ok := quadlet.SupportedExtensions[filepath.Ext(f.Name)]; !ok || strings.Contains(f.Name, "/") {
			continue
		}
		u := parser.NewUnitFile()
		if err := u.Parse(f.Content); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		u.Filename = f.Name
		units[f.Name] = u
		ui := &quadlet.UnitInfo{}
		if name, err := quadlet.GetUnitServiceName(u); err == nil {
			ui.ServiceName = name
		}
		if strings.HasSuffix(f.Name, ".container") {
			ui.ResourceName = quadlet.GetContainerResourceName(u)
		}
		info[f.Name] = ui
	}
	names := make([]string, 0, len(units))
	for n := range units {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, oj := quadlet.SupportedExtensions[filepath.Ext(names[i])], quadlet.SupportedExtensions[filepath.Ext(names[j])]
		if oi != oj {
			return oi < oj
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		u := units[n]
		var warn, err error
		switch filepath.Ext(n) {
		case ".container":
			_, warn, err = quadlet.ConvertContainer(u, info, user)
		case ".network":
			_, warn, err = quadlet.ConvertNetwork(u, info, user)
		case ".volume":
			_, warn, err = quadlet.ConvertVolume(u, info, user)
		default:
			return fmt.Errorf("%s: isisctl does not render this unit type", n)
		}
		if err != nil {
			return fmt.Errorf("quadlet rejects %s: %w", n, err)
		}
		if warn != nil {
			return fmt.Errorf("quadlet warns about %s: %w", n, warn)
		}
	}
	return nil
}

// WriteFiles writes files under dir (0644: they hold no secrets) and
// reports which changed.
func WriteFiles(dir string, files []File) (changed []string, err error) {
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if old, err := os.ReadFile(p); err == nil && string(old) == f.Content {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return changed, err
		}
		if err := os.WriteFile(p, []byte(f.Content), f.Mode); err != nil {
			return changed, err
		}
		if err := os.Chmod(p, f.Mode); err != nil {
			return changed, err
		}
		changed = append(changed, f.Name)
	}
	return changed, nil
}

// DefaultUnitsDir is where quadlet looks for this user's units.
func DefaultUnitsDir() string { return config.ContainersConfigDir("systemd") }
