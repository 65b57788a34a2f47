package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"

	"github.com/isis-project/isis/ops/podman"
	"github.com/spf13/cobra"
)

// pushFlags are build's --push and --digest-file.
type pushFlags struct {
	push       bool
	digestFile string
}

func (p *pushFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.push, "push", false, "push the image to the registry of the configuration (registry.server) and print its digest reference")
	cmd.Flags().StringVar(&p.digestFile, "digest-file", "", "with --push: also write the digest reference (registry/repo@sha256:...) to this file")
	cmd.Example += "\n  ISISCTL_REGISTRY_PASSWORD_FILE=/run/secrets/registry isisctl build --push"
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if p.digestFile != "" && !p.push {
			return usageError{fmt.Errorf("--digest-file needs --push")}
		}
		return nil
	}
}

// buildPushResult is build --push -o json.
type buildPushResult struct {
	*image.BuildResult
	Push *image.PushResult `json:"push"`
}

// pushBuilt pushes the image build made and prints both results.
func (f *factory) pushBuilt(conn podman.Engine, c *config.Config, p *pushFlags, r *image.BuildResult, progress io.Writer, start time.Time) error {
	tag := r.Image[len(c.Backend.Image)+1:]
	pr, err := image.Push(conn, c, r.Image, tag, host.IsLocal(f.URL()), progress)
	if err != nil {
		return err
	}
	if p.digestFile != "" {
		if err := os.WriteFile(p.digestFile, []byte(pr.Reference+"\n"), 0o644); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	f.print(buildPushResult{r, pr}, func(w io.Writer) {
		verb := "Built"
		if !r.Built {
			verb = "Up to date:"
		}
		fmt.Fprintf(w, "%s %s (%s, %.1f MB)\n", verb, r.Image, shortID(r.ID), float64(r.Size)/1e6)
		if pr.CAInstalled != "" {
			fmt.Fprintf(w, "Registry CA installed for the Podman service: %s\n", pr.CAInstalled)
		}
		fmt.Fprintf(w, "Pushed %s in %s\nDigest: %s\n", pr.Destination, time.Since(start).Round(time.Millisecond), pr.Reference)
	})
	return nil
}

// useImage applies --image (a pushed digest reference) to the
// configuration and, for a Podman service on this machine, installs the
// registry CA so the pull can verify the registry.
func (f *factory) useImage(c *config.Config, ref string) error {
	if err := image.Use(c, ref); err != nil {
		return usageError{err}
	}
	if c.PullsImage() {
		_, err := image.TrustRegistryCA(c, host.IsLocal(f.URL()))
		return err
	}
	return nil
}

const imageFlagHelp = "run this pushed image (registry/repo@sha256:..., as isisctl build --push prints it), pulled through the API when missing"
