package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/kube"
	"github.com/isis-project/isis/ops/render"

	"github.com/spf13/cobra"
)

// withKube adds --kube to the render command: the same deployment as
// Kubernetes manifests and a kustomization.yaml instead of quadlet units.
func withKube(f *factory, render *cobra.Command) *cobra.Command {
	var kube bool
	quadlets := render.RunE
	render.Short += " (or, with --kube, Kubernetes manifests)"
	render.Example += "\n  isisctl render --kube --out ./k8s && kubectl kustomize ./k8s"
	render.Flags().BoolVar(&kube, "kube", false, "render Kubernetes manifests and a kustomization.yaml instead (default --out: ./kube)")
	render.RunE = func(cmd *cobra.Command, args []string) error {
		if !kube {
			return quadlets(cmd, args)
		}
		c, err := f.Config()
		if err != nil {
			return err
		}
		out, _ := cmd.Flags().GetString("out")
		tag, _ := cmd.Flags().GetString("tag")
		allow, _ := cmd.Flags().GetBool("allow-placeholders")
		ctx, cancel := cmdContext()
		defer cancel()
		image, from, err := kubeImage(ctx, f, c, tag)
		if err != nil {
			return err
		}
		image, pinned, err := f.pinned(ctx, image, true)
		if err != nil {
			return err
		}
		if pinned {
			from += ", pinned to the digest the Podman host knows"
		}
		return renderKube(f, c, out, image, from, allow)
	}
	return render
}

// kubeImage is the image the manifests run, and where it came from:
// kube.image; else, with a registry configured, the digest reference
// build --push last pushed from this Podman host (a cluster cannot pull a
// localhost/ image, and a digest never moves), or with --tag that tag in the
// registry; else backend.image with --tag, backend.tag or latest (which
// render pins by digest or refuses: see pinned).
func kubeImage(ctx context.Context, f *factory, c *config.Config, tag string) (img, from string, err error) {
	switch {
	case c.Kube.Image != "":
		return c.Kube.Image, "kube.image", nil
	case c.Registry.Server != "" && tag != "" && !c.PullsImage():
		return c.RegistryImage(tag), "--tag, in registry.server", nil
	case c.Registry.Server != "" && !c.PullsImage():
		conn, err := f.Podman(ctx)
		if err != nil {
			return "", "", fmt.Errorf("render --kube: the image is the one isisctl build --push last pushed, read from the Podman host: %w (or set kube.image, or pass --tag)", err)
		}
		ref, err := image.Pushed(conn, c)
		if err != nil {
			return "", "", fmt.Errorf("render --kube: %w (or set kube.image, or pass --tag)", err)
		}
		return ref, "the last build --push", nil
	}
	return c.KubeImage(firstNonEmpty(tag, c.Backend.Tag)), "backend.image", nil
}

// renderKube writes the Kubernetes manifests (render --kube); they are
// decoded strictly with the official API types and checked before writing.
func renderKube(f *factory, c *config.Config, out, image, from string, allow bool) error {
	if out == "" {
		out = "kube"
	}
	// The secrets: section does not reach the manifests (the cluster's
	// Secrets are made apart): only the other placeholders matter.
	if !allow {
		if err := c.KubePlaceholderError(); err != nil {
			return err
		}
	}
	files, err := kube.Render(c, kube.Options{Image: image})
	if err != nil {
		return err
	}
	changed, err := render.WriteFiles(out, files)
	if err != nil {
		return err
	}
	f.print(map[string]any{"dir": out, "files": files, "changed": changed, "checked": true, "image": image, "image_from": from}, func(w io.Writer) {
		for _, fl := range files {
			fmt.Fprintf(w, "%s\n", filepath.Join(out, fl.Name))
		}
		fmt.Fprintf(w, "Image: %s (%s)\n", image, from)
		fmt.Fprintf(w, "Checked against the Kubernetes API types. Create the Secrets, then: kubectl apply -k %s (docs/kubernetes.md).\n", out)
	})
	return nil
}
