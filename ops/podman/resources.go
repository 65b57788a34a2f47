package podman

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	buildahDefine "github.com/containers/buildah/define"
	nettypes "go.podman.io/common/libnetwork/types"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/bindings/network"
	"github.com/containers/podman/v5/pkg/bindings/secrets"
	"github.com/containers/podman/v5/pkg/bindings/volumes"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
)

// The bindings side of Engine for everything but containers' lifecycle.

func (c *Conn) List(f ListFilter) ([]*ContainerState, error) {
	opts := new(containers.ListOptions)
	if f.All {
		opts = opts.WithAll(true)
	}
	if f.Filters != nil {
		opts = opts.WithFilters(f.Filters)
	}
	list, err := containers.List(c.ctx, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*ContainerState, 0, len(list))
	for _, lc := range list {
		st := &ContainerState{ID: lc.ID, Exists: true, Running: lc.State == "running", Labels: lc.Labels}
		if len(lc.Names) > 0 {
			st.Name = lc.Names[0]
		}
		out = append(out, st)
	}
	return out, nil
}

func (c *Conn) HealthCheck(name string) (string, error) {
	res, err := containers.RunHealthCheck(c.ctx, name, nil)
	if err != nil {
		return "", err
	}
	return res.Status, nil
}

func (c *Conn) CopyOut(name, path string, w io.Writer) (func() error, error) {
	return containers.CopyToArchive(c.ctx, name, path, w)
}

func (c *Conn) CopyIn(name, dir string, r io.Reader) (func() error, error) {
	return containers.CopyFromArchive(c.ctx, name, dir, r)
}

func (c *Conn) VolumeCreate(name string, labels map[string]string) error {
	_, err := volumes.Create(c.ctx, types.VolumeCreateOptions{Name: name, Labels: labels}, nil)
	return err
}

func (c *Conn) VolumeLabels(name string) (map[string]string, error) {
	v, err := volumes.Inspect(c.ctx, name, nil)
	if err != nil {
		return nil, err
	}
	return v.Labels, nil
}

func (c *Conn) VolumeRemove(name string, force bool) error {
	var opts *volumes.RemoveOptions
	if force {
		opts = new(volumes.RemoveOptions).WithForce(true)
	}
	return volumes.Remove(c.ctx, name, opts)
}

func (c *Conn) VolumeList(label string) ([]map[string]string, error) {
	vols, err := volumes.List(c.ctx, new(volumes.ListOptions).WithFilters(map[string][]string{"label": {label}}))
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, 0, len(vols))
	for _, v := range vols {
		out = append(out, v.Labels)
	}
	return out, nil
}

// SecretExists uses Inspect: secrets.Exists needs Podman 5's exists
// endpoint; Inspect works on 4.x too.
func (c *Conn) SecretExists(name string) (bool, error) {
	_, err := secrets.Inspect(c.ctx, name, nil)
	if err != nil && !IsNotFound(err) {
		return false, err
	}
	return err == nil, nil
}

func (c *Conn) SecretCreate(name, value string, labels map[string]string) error {
	_, err := secrets.Create(c.ctx, strings.NewReader(value), new(secrets.CreateOptions).WithName(name).WithLabels(labels))
	return err
}

func (c *Conn) SecretRemove(name string) error { return secrets.Remove(c.ctx, name) }

func (c *Conn) NetworkInspect(name string) (*Network, error) {
	rep, err := network.Inspect(c.ctx, name, nil)
	if err != nil {
		return nil, err
	}
	return &Network{Name: rep.Name, Internal: rep.Internal, DNS: rep.DNSEnabled, Labels: rep.Labels}, nil
}

func (c *Conn) NetworkCreate(n *Network) (*Network, error) {
	rep, err := network.Create(c.ctx, &nettypes.Network{Name: n.Name, Internal: n.Internal, DNSEnabled: n.DNS, Labels: n.Labels})
	if err != nil {
		return nil, err
	}
	return &Network{Name: rep.Name, Internal: rep.Internal, DNS: rep.DNSEnabled, Labels: rep.Labels}, nil
}

func (c *Conn) ImageExists(ref string) (bool, error) { return images.Exists(c.ctx, ref, nil) }

func (c *Conn) Image(ref string) (*Image, error) {
	img, err := images.GetImage(c.ctx, ref, nil)
	if err != nil {
		return nil, err
	}
	return &Image{ID: img.ID, Size: img.Size, Digest: img.Digest.String(), RepoDigests: img.RepoDigests}, nil
}

func (c *Conn) ImageTag(id, tag, repo string) error { return images.Tag(c.ctx, id, tag, repo, nil) }

func (c *Conn) Build(b *BuildOptions) (string, error) {
	opts := types.BuildOptions{BuildOptions: buildahDefine.BuildOptions{
		ContextDirectory: b.Dir,
		Output:           b.Ref,
		Out:              b.Out,
		Err:              b.Out,
		ReportWriter:     b.Out,
		Layers:           true,
		AdditionalTags:   b.Tags,
		Labels:           b.Labels,
	}}
	rep, err := images.Build(c.ctx, []string{filepath.Join(b.Dir, "Containerfile")}, opts)
	if err != nil {
		return "", err
	}
	return rep.ID, nil
}

func (c *Conn) Context() context.Context { return c.ctx }

func (c *Conn) Push(source, dest string, o *TransferOptions) (string, error) {
	opts := new(images.PushOptions).WithRetry(0)
	if o.SkipTLSVerify != nil {
		opts = opts.WithSkipTLSVerify(*o.SkipTLSVerify)
	}
	if o.Format != "" {
		opts = opts.WithFormat(o.Format)
	}
	if o.Progress != nil {
		opts = opts.WithQuiet(false).WithProgressWriter(o.Progress)
	} else {
		opts = opts.WithQuiet(true)
	}
	if o.Username != "" {
		opts = opts.WithUsername(o.Username).WithPassword(o.Password)
	}
	if err := images.Push(c.ctx, source, dest, opts); err != nil {
		return "", err
	}
	if opts.ManifestDigest != nil {
		return *opts.ManifestDigest, nil
	}
	return "", nil
}

func (c *Conn) Pull(ref string, o *TransferOptions) error {
	opts := new(images.PullOptions).WithQuiet(o.Progress == nil).WithRetry(0)
	if o.Progress != nil {
		opts = opts.WithProgressWriter(o.Progress)
	}
	if o.Username != "" {
		opts = opts.WithUsername(o.Username).WithPassword(o.Password)
	}
	if o.SkipTLSVerify != nil {
		opts = opts.WithSkipTLSVerify(*o.SkipTLSVerify)
	}
	_, err := images.Pull(c.ctx, ref, opts)
	return err
}

var _ Engine = (*Conn)(nil)
