package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/secrets"
)

// ImportSourceSecret holds the Django database's connection string while an
// import from elsewhere (--from) runs; it is removed when the import ends.
const ImportSourceSecret = "isis-import-django-source"

// ImportDjangoOptions say where the Django database is and how to import.
type ImportDjangoOptions struct {
	// FromDatabase is a database on the postgres container's own server,
	// reached with the backend's own credentials (the password stays in its
	// Podman secret).
	FromDatabase string `json:"from_database,omitempty"`
	// FromDSN is a connection string elsewhere; it travels in a temporary
	// Podman secret, never on a command line or in the environment.
	FromDSN   string `json:"-"`
	UserTable string `json:"user_table,omitempty"`
	DryRun    bool   `json:"dry_run"`
}

// Validate checks the options before anything runs.
func (o ImportDjangoOptions) Validate() error {
	if (o.FromDatabase == "") == (o.FromDSN == "") {
		return errors.New("name the Django database with exactly one of --from-database NAME and --from DSN (or --from-file)")
	}
	if o.FromDatabase != "" && (len(o.FromDatabase) > 63 || strings.ContainsAny(o.FromDatabase, "\x00/?#'\\ ")) {
		return fmt.Errorf("--from-database %q is not a PostgreSQL database name", o.FromDatabase)
	}
	if o.UserTable != "" && (len(o.UserTable) > 63 || strings.ContainsRune(o.UserTable, 0)) {
		return fmt.Errorf("--user-table %q is not a table name", o.UserTable)
	}
	return nil
}

// importDjangoArgs are the arguments of `isis import-django` in the job.
func importDjangoArgs(o ImportDjangoOptions) []string {
	args := []string{"import-django", "--output", "json"} // the image's entrypoint is /isis
	if o.FromDatabase != "" {
		args = append(args, "--from-database", o.FromDatabase)
	} else {
		args = append(args, "--from-file", "/run/secrets/"+ImportSourceSecret)
	}
	if o.UserTable != "" {
		args = append(args, "--user-table", o.UserTable)
	}
	if o.DryRun {
		args = append(args, "--dry-run")
	}
	return args
}

// withImportSource lets a job reach a Django database elsewhere: the egress
// network, and the secret holding its connection string.
func withImportSource(spec *ContainerSpec, c *Config, o ImportDjangoOptions) {
	if o.FromDSN == "" {
		return
	}
	spec.Networks = append(spec.Networks, c.EgressNetwork)
	spec.Secrets = append(spec.Secrets, SecretRef{Name: ImportSourceSecret, Target: ImportSourceSecret, UID: backendUID, GID: backendUID})
}

// ImportDjangoSpec is the one-off container that runs `isis import-django`:
// a job like `isisctl migrate`'s (the backend's container, with its secrets,
// settings, user and read-only root, on the private network where the
// postgres container is, nothing published, run once), which with FromDSN
// also joins the egress network and mounts the source secret.
func ImportDjangoSpec(conn context.Context, c *Config, image string, o ImportDjangoOptions) (*ContainerSpec, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	spec, err := oneOff(conn, c, image, c.Backend.Name+"-import-django", importDjangoArgs(o)...)
	if err != nil {
		return nil, err
	}
	withImportSource(spec, c, o)
	return spec, nil
}

// ImportDjangoResult is what the import container reported.
type ImportDjangoResult struct {
	Image    string          `json:"image"`
	ExitCode int             `json:"exit_code"`
	Summary  json.RawMessage `json:"summary,omitempty"`
}

// ImportConflictError is an import stopped by conflicts (nothing written).
type ImportConflictError struct{ Conflicts []string }

func (e *ImportConflictError) Error() string {
	return fmt.Sprintf("import stopped by %d conflict(s); nothing was written:\n%s", len(e.Conflicts), strings.Join(e.Conflicts, "\n"))
}

// ImportDjango runs `isis import-django` in a one-off container of image,
// streaming its progress lines to progress, and returns its JSON summary.
func ImportDjango(ctx, conn context.Context, c *Config, image string, o ImportDjangoOptions, progress func(string)) (*ImportDjangoResult, error) {
	spec, err := ImportDjangoSpec(conn, c, image, o)
	if err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	if o.FromDatabase != "" {
		// The job runs as the owner role: it reads the source read-only.
		if err := GrantImportSource(conn, c, o.FromDatabase); err != nil {
			return nil, err
		}
	}
	if o.FromDSN != "" {
		_ = secrets.Remove(conn, ImportSourceSecret)
		if _, err := secrets.Create(conn, stringsReader(o.FromDSN), new(secrets.CreateOptions).WithName(ImportSourceSecret).
			WithLabels(map[string]string{LabelManaged: "true"})); err != nil {
			return nil, fmt.Errorf("create secret %q: %w", ImportSourceSecret, err)
		}
		defer secrets.Remove(context.WithoutCancel(conn), ImportSourceSecret)
	}
	_ = RemoveContainer(conn, spec.Name, 0)
	if err := CreateContainer(conn, spec); err != nil {
		return nil, err
	}
	defer RemoveContainer(context.WithoutCancel(conn), spec.Name, 0)
	if err := StartContainer(conn, spec.Name); err != nil {
		return nil, err
	}
	// Follow the logs while it runs: standard error is progress, standard
	// output the JSON summary.
	stdout, stderr := make(chan string, 1000), make(chan string, 1000)
	logsDone := make(chan error, 1)
	go func() {
		follow := true
		logsDone <- containers.Logs(conn, spec.Name, new(containers.LogOptions).WithStdout(true).WithStderr(true).WithFollow(follow), stdout, stderr)
	}()
	res := &ImportDjangoResult{Image: image, ExitCode: -1}
	var last string
	waitDone := make(chan error, 1)
	go func() {
		code, err := containers.Wait(conn, spec.Name, new(containers.WaitOptions).WithCondition([]define.ContainerStatus{define.ContainerStateExited, define.ContainerStateStopped}))
		res.ExitCode = int(code)
		waitDone <- err
	}()
	handle := func(l string, out bool) {
		l = strings.TrimRight(l, "\r\n")
		if out && strings.HasPrefix(strings.TrimSpace(l), "{") {
			res.Summary = json.RawMessage(strings.TrimSpace(l))
			return
		}
		if strings.TrimSpace(l) != "" {
			last = strings.TrimSpace(l)
			progress(l)
		}
	}
	var waitErr error
	exited, logsEnded := false, false
	for !exited || !logsEnded {
		select {
		case l := <-stdout:
			handle(l, true)
		case l := <-stderr:
			handle(l, false)
		case waitErr = <-waitDone:
			exited = true
		case <-logsDone:
			logsEnded = true
		case <-ctx.Done():
			_ = StopContainer(context.WithoutCancel(conn), spec.Name, 10)
			return res, fmt.Errorf("import-django interrupted (the import runs in one transaction: isis is as it was): %w", ctx.Err())
		}
	}
	for drained := false; !drained; {
		select {
		case l := <-stdout:
			handle(l, true)
		case l := <-stderr:
			handle(l, false)
		default:
			drained = true
		}
	}
	if waitErr != nil {
		return res, fmt.Errorf("wait for %q: %w", spec.Name, waitErr)
	}
	if res.ExitCode != 0 {
		var s struct {
			Conflicts []struct{ Table, ID, Problem string }
		}
		if json.Unmarshal(res.Summary, &s) == nil && len(s.Conflicts) > 0 {
			ce := &ImportConflictError{}
			for _, c := range s.Conflicts {
				ce.Conflicts = append(ce.Conflicts, c.Table+" id="+c.ID+": "+c.Problem)
			}
			return res, ce
		}
		return res, fmt.Errorf("isis import-django exited with code %d: %s", res.ExitCode, last)
	}
	return res, nil
}
