// Command isisctl deploys isis and its PostgreSQL to a Podman host.
package main

import (
	"fmt"
	"os"

	"github.com/isis-project/isis/api"
	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "isisctl",
		Short:         "Deploy isis and its PostgreSQL to a Podman host",
		Version:       api.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "isisctl: "+err.Error())
		os.Exit(2)
	}
}
