package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/isis-project/isis/ops"
)

// renderKube writes the Kubernetes manifests (render --kube); they are
// decoded strictly with the official API types and checked before writing.
func renderKube(f *factory, c *ops.Config, out, tag string, allow bool) error {
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
	files, err := ops.RenderKube(c, ops.KubeOptions{Image: c.KubeImage(tag)})
	if err != nil {
		return err
	}
	changed, err := ops.WriteFiles(out, files)
	if err != nil {
		return err
	}
	f.print(map[string]any{"dir": out, "files": files, "changed": changed, "checked": true}, func(w io.Writer) {
		for _, fl := range files {
			fmt.Fprintf(w, "%s\n", filepath.Join(out, fl.Name))
		}
		fmt.Fprintf(w, "Checked against the Kubernetes API types. Create the Secrets, then: kubectl apply -k %s (README: \"From one host to Kubernetes\").\n", out)
	})
	return nil
}
